#!/usr/bin/env bash
# Downloads the Debian packages the evaluation reads and unpacks them into
# a cache folder, without installing anything: make eval runs this first.
#
#   bash eval/fetch.sh [DIR]     (default eval/.cache; the tree lands in DIR/root)
#
# The versions are those of Debian 12 (bookworm). A mirror drops a version
# when a newer one replaces it, so a pinned version that is gone falls back
# to the current one, and the evaluation prints the versions it read.
set -euo pipefail
dir=${1:-eval/.cache}
pinned=(debian-faq=11.1 git-doc=1:2.39.5-0+deb12u3 docker-doc=20.10.24+dfsg1-1+deb12u1)

if [ -f "$dir/root/.complete" ]; then
	exit 0
fi
mkdir -p "$dir/debs"
rm -rf "$dir/root" "$dir/debs"/*.deb
cd "$dir/debs"
fetch() { apt-get download -q "$@" 2>&1 | grep -v 'couldn.t be accessed by user' || true; }
for p in "${pinned[@]}"; do
	name=${p%%=*}
	fetch "$p"
	if ! ls "${name}"_*.deb >/dev/null 2>&1; then
		echo "eval: $p is not on the mirror; fetching the current $name" >&2
		fetch "$name"
	fi
	if ! ls "${name}"_*.deb >/dev/null 2>&1; then
		# A fresh machine may not have read the package lists yet.
		apt-get update -qq
		fetch "$name"
	fi
	ls "${name}"_*.deb >/dev/null 2>&1 || { echo "eval: cannot download $name" >&2; exit 1; }
done
cd - >/dev/null
for f in "$dir"/debs/*.deb; do
	dpkg-deb -x "$f" "$dir/root"
	dpkg-deb -f "$f" Package Version | paste -sd' ' >>"$dir/root/.versions"
done
touch "$dir/root/.complete"
