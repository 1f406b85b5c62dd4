#!/usr/bin/env bash
# Makes sure the browser tests have a Chromium: $RUNNEL_CHROMIUM if set,
# else Debian's /usr/bin/chromium, installed with apt-get when missing and
# this user may (a browser that a test tool downloads cannot be fetched on
# a closed network, so the tests never use one).
set -euo pipefail
if [ -n "${RUNNEL_CHROMIUM:-}" ]; then
	[ -x "$RUNNEL_CHROMIUM" ] && exit 0
	echo "RUNNEL_CHROMIUM=$RUNNEL_CHROMIUM is not an executable" >&2
	exit 1
fi
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "installing Debian's chromium for the browser tests" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
	exit 0
fi
echo "the browser tests need Chromium: install Debian's package (apt-get install chromium) or set RUNNEL_CHROMIUM" >&2
exit 1
