#!/usr/bin/env bash
# Makes sure the deploy tests (deploy/deploy_test.go) have an nginx to put in
# front of runnel: $RUNNEL_NGINX if set, else nginx on PATH or in /usr/sbin,
# else Debian's nginx package, installed with apt-get when this user may.
#
# The tests start nginx themselves, unprivileged, on a loopback port. The
# package's own service is not wanted: when the machine has no policy-rc.d,
# one that refuses to start services is put in place for the install and
# removed after it, so nothing listens on port 80 afterwards.
set -euo pipefail
if [ -n "${RUNNEL_NGINX:-}" ]; then
	[ -x "$RUNNEL_NGINX" ] && exit 0
	echo "RUNNEL_NGINX=$RUNNEL_NGINX is not an executable" >&2
	exit 1
fi
command -v nginx >/dev/null 2>&1 && exit 0
[ -x /usr/sbin/nginx ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "installing Debian's nginx for the deploy tests" >&2
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# scripts/ensure-nginx.sh: no service starts while nginx installs\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx
	exit 0
fi
echo "the deploy tests need nginx: install Debian's package (apt-get install nginx) or set RUNNEL_NGINX" >&2
exit 1
