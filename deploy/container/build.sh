#!/bin/sh
# Builds the runnel binary that the container image ships: static (no cgo),
# with the same -trimpath and -ldflags as "make build".
#
# Usage: deploy/container/build.sh OUTPUT
#
# Environment: GOOS and GOARCH choose the target (default: this machine's);
# VERSION is what "runnel version" prints (default devel); GO is the go
# command (default go). The Dockerfile's build stage runs this with BuildKit's
# TARGETOS and TARGETARCH, and deploy/deploy_test.go runs it for linux/amd64
# and linux/arm64 and checks what it made.
set -eu
out=${1:?usage: deploy/container/build.sh OUTPUT}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$(dirname "$0")/../.."
CGO_ENABLED=0 exec "${GO:-go}" build -trimpath -ldflags "-s -w -X main.Version=${VERSION:-devel}" -o "$out" ./cmd/runnel
