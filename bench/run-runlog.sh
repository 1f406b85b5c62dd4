#!/usr/bin/env bash
# Reproduces the Redis figures in docs/scaling.md: starts a redis-server of
# its own on a loopback port (no persistence), runs bench/runlog against it
# and stops it by PID.
#
#   bash bench/run-runlog.sh [runs] [tokens]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-100,1000}
tokens=${2:-200}
bash scripts/ensure-redis.sh
bin=${RUNNEL_REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}
port=${RUNNEL_BENCH_REDIS_PORT:-16399}
work=$(mktemp -d)
"$bin" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --loglevel warning >"$work/redis.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do
	(exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
	sleep 0.05
done
go run ./bench/runlog -redis "redis://127.0.0.1:$port/0" -runs "$runs" -tokens "$tokens"
