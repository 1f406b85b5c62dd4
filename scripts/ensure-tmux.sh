#!/usr/bin/env bash
# Makes sure the terminal tests of "runnel ask" have tmux, which they run at
# fixed sizes and read back with capture-pane: Debian's tmux, installed with
# apt-get when missing and this user may. With RUNNEL_REQUIRE_TMUX=1 those
# tests fail without it rather than skip.
set -euo pipefail
command -v tmux >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "installing Debian's tmux for the terminal tests" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux
	exit 0
fi
echo "the terminal tests need tmux: install Debian's package (apt-get install tmux)" >&2
exit 1
