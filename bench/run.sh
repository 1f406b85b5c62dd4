#!/usr/bin/env bash
# Reproduces the figures in docs/benchmarks.md: builds runnel, generates a
# corpus of about 10,000 passages, times its import, serves it on loopback
# with the server on one core, and runs the load tool against it. Stops the
# server it started, and nothing else, when done.
#
#   bash bench/run.sh [requests] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
c=${2:-1}
work=$(mktemp -d)
port=${RUNNEL_BENCH_PORT:-18089}
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/runnel" ./cmd/runnel
go build -o "$work/load" ./bench/load
go run ./bench/gencorpus -articles 2000 -sections 5 > "$work/corpus.jsonl"

echo "== import (2,000 articles, 10,000 passages)"
start=$(date +%s.%N)
"$work/runnel" import --db "$work/bench.db" "$work/corpus.jsonl"
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" 'BEGIN { t = e - s; printf "%.2f s: %.0f articles/s, %.0f passages/s\n", t, 2000 / t, 10000 / t }'

echo "== serve on one core (GOMAXPROCS=1), $n requests from $c client(s)"
GOMAXPROCS=1 "$work/runnel" serve --db "$work/bench.db" --addr "127.0.0.1:$port" --log-level warn >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
"$work/load" -url "http://127.0.0.1:$port" -n "$n" -c "$c"
