#!/usr/bin/env bash
# Builds runnel for AWS Lambda (runtime provided.al2023, arm64):
#
#   dist/lambda/bootstrap            the binary (linux/arm64, static, -tags lambda.norpc)
#   dist/lambda/runnel-lambda.zip    what template.yaml and terraform/ deploy
#
# Usage: deploy/lambda/build.sh [--db FILE]
#
#   --db FILE   bundle this runnel database (made with "runnel import") in the
#               zip as runnel.db; deploy with RUNNEL_DB=/var/task/runnel.db.
#               Without it the function answers from the embedded articles.
#
# Environment: GO (the go command, default go), VERSION (default: git describe).
# Zips with zip, or python3, or Go's archive/zip, whichever is found first.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/dist/lambda
zipfile=$out/runnel-lambda.zip
GO=${GO:-go}

db=
while [ $# -gt 0 ]; do
	case $1 in
	--db) db=${2:?--db needs a FILE}; shift 2 ;;
	--db=*) db=${1#--db=}; shift ;;
	-h | --help) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
if [ -n "$db" ]; then
	[ -f "$db" ] || { echo "build.sh: no database at $db" >&2; exit 1; }
	db=$(cd "$(dirname "$db")" && pwd)/$(basename "$db")
	if [ -s "$db-wal" ]; then
		# Only the main file is bundled; what is still in the -wal would be lost.
		echo "build.sh: $db-wal is not empty: close every runnel using the database first" >&2
		exit 1
	fi
fi

cd "$root"
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
rm -rf "$out"
mkdir -p "$out"
GOOS=linux GOARCH=arm64 CGO_ENABLED=0 "$GO" build -tags lambda.norpc -trimpath \
	-ldflags "-s -w -X main.Version=$version" -o "$out/bootstrap" ./cmd/runnel
files=(bootstrap)
if [ -n "$db" ]; then
	cp "$db" "$out/runnel.db"
	files+=(runnel.db)
fi

# bootstrap must keep its executable bit in the zip, or Lambda cannot run it.
cd "$out"
if command -v zip >/dev/null 2>&1; then
	zip -q -X "$zipfile" "${files[@]}"
elif command -v python3 >/dev/null 2>&1; then
	python3 -c '
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
    for f in sys.argv[2:]:
        z.write(f)  # keeps the file mode
' "$zipfile" "${files[@]}"
else
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	cat >"$tmp/zip.go" <<'EOF'
// Command zip writes the files named after the zip's path into it, keeping
// their modes.
package main

import (
	"archive/zip"
	"io"
	"log"
	"os"
)

func main() {
	out, err := os.Create(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	zw := zip.NewWriter(out)
	for _, name := range os.Args[2:] {
		fi, err := os.Stat(name)
		if err != nil {
			log.Fatal(err)
		}
		h, err := zip.FileInfoHeader(fi)
		if err != nil {
			log.Fatal(err)
		}
		h.Method = zip.Deflate
		w, err := zw.CreateHeader(h)
		if err != nil {
			log.Fatal(err)
		}
		f, err := os.Open(name)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := io.Copy(w, f); err != nil {
			log.Fatal(err)
		}
		f.Close()
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := out.Close(); err != nil {
		log.Fatal(err)
	}
}
EOF
	(cd "$tmp" && GOOS= GOARCH= CGO_ENABLED=0 GOFLAGS= "$GO" build -o zip zip.go)
	"$tmp/zip" "$zipfile" "${files[@]}"
fi

size() { wc -c <"$1" | tr -d ' '; }
echo "dist/lambda/bootstrap ($(size bootstrap) bytes, linux/arm64, $version)"
echo "dist/lambda/runnel-lambda.zip ($(size "$zipfile") bytes: ${files[*]})"
