#!/usr/bin/env bash
# Load tests of runnel against two peers (docs/load.md). Builds the bench
# server (runnel's real HTTP server, store and pipeline with a paced
# generator), the plain net/http peer and the load generator, generates and
# imports a corpus of 10,000 passages, then for each scenario starts each
# server in turn on core 0 (Go servers with GOMAXPROCS=1), runs
# bench/loadgen on core 1 against it over loopback, and stops the server by
# its PID. Prints one table a scenario, a row a server.
#
#   bash bench/run-load.sh            # the full run (about 6 minutes)
#   QUICK=1 bash bench/run-load.sh    # a smoke run of small sizes (under a minute)
#
# Every size can be set in the environment (defaults of the full run; QUICK=1
# changes the defaults, not what you set):
#
#   SERVERS="runnel plain fastapi"   SCENARIOS="S1 S1-100 S2 S3"
#   ARTICLES=2000 SECTIONS=5         corpus: articles x sections = passages
#   S1_CONNS=1000 S1_SMALL_CONNS=100 S1_PER=2 S1_TOKENS=200 S1_INTERVAL=10ms S1_RAMP=1s S1_TIMEOUT=240s
#   S2_STREAMS=50 S2_TOKENS=20000 S2_TIMEOUT=180s                (interval 0)
#   S3_STREAMS=5000 S3_TOKENS=10 S3_INTERVAL=1s S3_RAMP=5s S3_TIMEOUT=240s
#   RUNNEL_FLAGS="-write-hold 0"   more flags for bench/server (runnel's row)
#   PERF=auto|0    count write-type system calls with perf stat (auto: when it works)
#   OUT=dir        where results.jsonl, tables.md and the servers' logs go
#                  (default a new /tmp/runnel-load.XXXXXX, kept)
#   PYTHON=/usr/bin/python3   the interpreter with Debian's FastAPI
#
# It needs root only to install python3-fastapi and python3-uvicorn with
# apt-get when they are missing and the fastapi server is asked for. Load
# goes only to 127.0.0.1; every scenario has a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=${QUICK:-0}
if [ "$quick" = 1 ]; then
	: "${ARTICLES:=200}" "${S1_CONNS:=50}" "${S1_SMALL_CONNS:=10}" "${S1_TOKENS:=50}" "${S1_TIMEOUT:=30s}"
	: "${S2_STREAMS:=10}" "${S2_TOKENS:=2000}" "${S2_TIMEOUT:=30s}"
	: "${S3_STREAMS:=300}" "${S3_TOKENS:=3}" "${S3_INTERVAL:=500ms}" "${S3_RAMP:=1s}" "${S3_TIMEOUT:=30s}"
fi
SERVERS=${SERVERS:-runnel plain fastapi}
SCENARIOS=${SCENARIOS:-S1 S1-100 S2 S3}
ARTICLES=${ARTICLES:-2000}
SECTIONS=${SECTIONS:-5}
S1_CONNS=${S1_CONNS:-1000}
S1_SMALL_CONNS=${S1_SMALL_CONNS:-100}
S1_PER=${S1_PER:-2}
S1_TOKENS=${S1_TOKENS:-200}
S1_INTERVAL=${S1_INTERVAL:-10ms}
S1_RAMP=${S1_RAMP:-1s}
S1_TIMEOUT=${S1_TIMEOUT:-240s}
S2_STREAMS=${S2_STREAMS:-50}
S2_TOKENS=${S2_TOKENS:-20000}
S2_TIMEOUT=${S2_TIMEOUT:-180s}
S3_STREAMS=${S3_STREAMS:-5000}
S3_TOKENS=${S3_TOKENS:-10}
S3_INTERVAL=${S3_INTERVAL:-1s}
S3_RAMP=${S3_RAMP:-5s}
S3_TIMEOUT=${S3_TIMEOUT:-240s}
PERF=${PERF:-auto}
RUNNEL_FLAGS=${RUNNEL_FLAGS:-}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-$(mktemp -d /tmp/runnel-load.XXXXXX)}
mkdir -p "$OUT"
results=$OUT/results.jsonl
: >"$results"

declare -A port=([runnel]=18090 [plain]=18091 [fastapi]=18092)

work=$(mktemp -d)
pid=
stop_server() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 150); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
	fi
}
cleanup() {
	stop_server
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Open files: a stream is a descriptor in the server and one in loadgen.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
nofile=$(ulimit -n)
echo "== open files limit $nofile; results in $OUT"
if [ "$nofile" != unlimited ] && [ "$S3_STREAMS" -gt $((nofile - 100)) ]; then
	echo "warning: S3_STREAMS=$S3_STREAMS is near the open files limit $nofile; expect connection errors" >&2
fi

if [[ " $SERVERS " == *" fastapi "* ]] && ! "$PYTHON" -c 'import fastapi, uvicorn' 2>/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "== installing python3-fastapi and python3-uvicorn (Debian)"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-fastapi python3-uvicorn >/dev/null
	fi
	if ! "$PYTHON" -c 'import fastapi, uvicorn' 2>/dev/null; then
		echo "warning: no FastAPI for $PYTHON; skipping the fastapi server" >&2
		SERVERS=${SERVERS//fastapi/}
	fi
fi

perf_flag=
if [ "$PERF" != 0 ] && command -v perf >/dev/null && perf stat -e syscalls:sys_enter_write -o /dev/null -- true 2>/dev/null; then
	perf_flag=-perf
fi

echo "== build"
go build -o "$work/runnel" ./cmd/runnel
go build -o "$work/server" ./bench/server
go build -o "$work/plain" ./bench/peers/plain
go build -o "$work/loadgen" ./bench/loadgen
go build -o "$work/gencorpus" ./bench/gencorpus

echo "== corpus: $ARTICLES articles x $SECTIONS sections"
"$work/gencorpus" -articles "$ARTICLES" -sections "$SECTIONS" >"$work/corpus.jsonl"
"$work/runnel" import --db "$work/bench.db" "$work/corpus.jsonl" 2>"$OUT/import.log" | tail -1

# start_server NAME TOKENS INTERVAL: starts it on core 0 and waits until it
# answers /healthz; sets pid.
start_server() {
	local name=$1 tokens=$2 interval=$3 p=${port[$1]} log=$OUT/$1-$scenario.log
	# Something else answering on the port would be measured instead of
	# the server started here, which would fail to bind.
	if curl -s -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null; then
		echo "error: port $p is taken by another process; stop it and run again" >&2
		return 1
	fi
	case $name in
	runnel)
		GOMAXPROCS=1 taskset -c 0 "$work/server" -db "$work/bench.db" -addr "127.0.0.1:$p" \
			-tokens "$tokens" -interval "$interval" $RUNNEL_FLAGS >"$log" 2>&1 &
		;;
	plain)
		GOMAXPROCS=1 taskset -c 0 "$work/plain" -addr "127.0.0.1:$p" -tokens "$tokens" -interval "$interval" >"$log" 2>&1 &
		;;
	fastapi)
		taskset -c 0 "$PYTHON" bench/peers/fastapi/app.py --corpus "$work/corpus.jsonl" --port "$p" \
			--tokens "$tokens" --interval "$interval" >"$log" 2>&1 &
		;;
	esac
	pid=$!
	for _ in $(seq 600); do
		if curl -sf "http://127.0.0.1:$p/healthz" >/dev/null 2>&1 && kill -0 "$pid" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then break; fi
		sleep 0.1
	done
	echo "error: $name did not start; its log:" >&2
	cat "$log" >&2
	stop_server
	return 1
}

# seconds DURATION: a Go duration of whole seconds or more, in seconds.
seconds() {
	case $1 in
	*ms) echo 1 ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}

# scenario NAME DESCRIPTION TOKENS INTERVAL -- LOADGEN FLAGS...
run_scenario() {
	scenario=$1
	local describe=$2 tokens=$3 interval=$4 timeout=$5
	shift 5
	for name in $SERVERS; do
		echo
		echo "== $scenario on $name: $describe"
		start_server "$name" "$tokens" "$interval" || continue
		timeout --kill-after=10 $(($(seconds "$timeout") + 45)) \
			taskset -c 1 "$work/loadgen" -url "http://127.0.0.1:${port[$name]}" -questions bench/questions.txt \
			-pid "$pid" $perf_flag -timeout "$timeout" -scenario "$scenario" -server "$name" -describe "$describe" \
			-json "$results" "$@" || echo "warning: loadgen on $name ended with status $?" >&2
		stop_server
	done
}

for s in $SCENARIOS; do
	case $s in
	S1)
		run_scenario S1 "$S1_CONNS connections x $S1_PER questions, $S1_TOKENS tokens $S1_INTERVAL apart, connections opened over $S1_RAMP" \
			"$S1_TOKENS" "$S1_INTERVAL" "$S1_TIMEOUT" -conns "$S1_CONNS" -per "$S1_PER" -ramp "$S1_RAMP"
		;;
	S1-100)
		run_scenario S1-100 "$S1_SMALL_CONNS connections x $S1_PER questions, $S1_TOKENS tokens $S1_INTERVAL apart, connections opened over $S1_RAMP" \
			"$S1_TOKENS" "$S1_INTERVAL" "$S1_TIMEOUT" -conns "$S1_SMALL_CONNS" -per "$S1_PER" -ramp "$S1_RAMP"
		;;
	S2)
		run_scenario S2 "$S2_STREAMS streams x $S2_TOKENS tokens, no pause" \
			"$S2_TOKENS" 0 "$S2_TIMEOUT" -conns "$S2_STREAMS" -per 1
		;;
	S3)
		run_scenario S3 "$S3_STREAMS streams of $S3_TOKENS tokens $S3_INTERVAL apart, opened over $S3_RAMP" \
			"$S3_TOKENS" "$S3_INTERVAL" "$S3_TIMEOUT" -conns "$S3_STREAMS" -per 1 -ramp "$S3_RAMP"
		;;
	*)
		echo "unknown scenario $s" >&2
		exit 2
		;;
	esac
done

echo
echo "== results ($results)"
echo
"$work/loadgen" -table "$results" | tee "$OUT/tables.md"
