#!/usr/bin/env bash
# Makes sure the Redis tests (redis/, cmd/runnel, deploy/) have a
# redis-server to start: $RUNNEL_REDIS_SERVER if set, else redis-server on
# PATH or in /usr/bin, else Debian's redis-server package, installed with
# apt-get when this user may.
#
# The tests start their own redis-server, on a loopback port, with no
# persistence, and stop it by PID. The package's own service is not wanted:
# when the machine has no policy-rc.d, one that refuses to start services is
# put in place for the install and removed after it.
set -euo pipefail
if [ -n "${RUNNEL_REDIS_SERVER:-}" ]; then
	[ -x "$RUNNEL_REDIS_SERVER" ] && exit 0
	echo "RUNNEL_REDIS_SERVER=$RUNNEL_REDIS_SERVER is not an executable" >&2
	exit 1
fi
command -v redis-server >/dev/null 2>&1 && exit 0
[ -x /usr/bin/redis-server ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "installing Debian's redis-server for the Redis tests" >&2
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# scripts/ensure-redis.sh: no service starts while redis-server installs\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
	exit 0
fi
echo "the Redis tests need redis-server: install Debian's package (apt-get install redis-server) or set RUNNEL_REDIS_SERVER" >&2
exit 1
