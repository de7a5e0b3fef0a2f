#!/usr/bin/env bash
# bench-ingress: what the `ferry up` ingress hop costs (issue 15's ingress
# target: ingress + replica >= 60 % of the replica alone).
#
# It builds ferry, starts `ferry up --in-process-predictors=false` (every
# predictor a ferry serve process) on loopback pinned to CPU 0 (taskset;
# the replica it starts inherits the pin) with the xgboost-iris example held
# at one replica (bench/ingress/xgboost-iris.yaml), finds the replica's own
# HTTP port through the management API, then runs wrk pinned to CPU 1 with
# a V1 batch-1 predict, alternating
#   ingress  http://127.0.0.1:$HTTP_PORT/v1/models/xgboost-iris:predict
#            with Host: xgboost-iris.default.example.com
#   replica  http://127.0.0.1:$REPLICA_PORT/v1/models/xgboost-iris:predict
# BENCH_ROUNDS times, and prints each round's rps, the ranges and the
# ratio ingress/replica. It also reads the CPU time of the ingress (ferry
# up) and of the replica around each run (/proc/PID/stat): with both
# pinned to one core, CPU per request predicts the ratio
# replica-alone/(ingress + replica) even when other programs steal the core. Only the processes it starts are stopped, by PID.
#
# BENCH_MODES="hop inproc" also starts a second `ferry up`, with
# in-process predictors (its default), on CPU 0 (ports BENCH_PORT_BASE+10..+12): its
# predictor runs inside it, so "ingress" is that one process; each round
# then loads both ingresses, in alternating order, and the replica alone
# (the first ferry up's process replica, the reference for both). Its ratio
# by CPU is replica-alone / in-process-ingress CPU per request.
#
# Knobs (environment): BENCH_ROUNDS (3), BENCH_DURATION (10s),
# BENCH_CONNECTIONS (16), BENCH_THREADS (1), BENCH_PORT_BASE (18180: ingress
# HTTP, +1 gRPC, +2 management API), BENCH_MODES ("hop"), BENCH_OUT (default
# a new /tmp/ferry-bench-ingress.*), BIN (default: build ./cmd/ferry into
# BENCH_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-1}
PORT=${BENCH_PORT_BASE:-18180}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/ferry-bench-ingress.XXXXXX)}
mkdir -p "$OUT"
HOST=xgboost-iris.default.example.com
PATH_V1=/v1/models/xgboost-iris:predict
LUA=bench/ingress/post.lua

for tool in wrk taskset curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "$tool is missing (wrk: apt-get install -y wrk; taskset: util-linux)" >&2
    exit 1
  fi
done
if [ "$(nproc)" -lt 2 ]; then
  echo "needs two CPUs: ferry up on CPU 0, wrk on CPU 1" >&2
  exit 1
fi
BIN=${BIN:-}
if [ -z "$BIN" ]; then
  echo "== building ferry into $OUT/ferry"
  go build -o "$OUT/ferry" ./cmd/ferry
  BIN=$OUT/ferry
fi

sed "s|MODEL_DIR|$PWD/examples/models/xgboost-iris|" bench/ingress/xgboost-iris.yaml >"$OUT/xgboost-iris.yaml"
MODES=${BENCH_MODES:-hop}
for m in $MODES; do
  case $m in hop | inproc) ;; *)
    echo "BENCH_MODES: $m is not hop or inproc" >&2
    exit 1
    ;;
  esac
done

UP_PIDS=()
stop() {
  local p
  for p in "${UP_PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
trap stop EXIT
trap 'exit 130' INT TERM

# start_up NAME PORT [FLAGS...]: a ferry up on CPU 0 with data in
# $OUT/NAME, in the background ($! is its PID).
start_up() {
  local name=$1 port=$2
  shift 2
  mkdir -p "$OUT/$name"
  taskset -c 0 "$BIN" up -f "$OUT/xgboost-iris.yaml" --data-dir "$OUT/$name" --host 127.0.0.1 \
    --http-port "$port" --grpc-port $((port + 1)) --api-addr "127.0.0.1:$((port + 2))" \
    --log-format text --log-level warn "$@" >"$OUT/$name.log" 2>&1 &
}

# replica PORT FIELD: httpPort or pid of the service's Ready replicas of
# the ferry up whose base port is PORT, one a line.
replica() {
  local token
  token=$(cat "$OUT/$(updir "$1")/api-token" 2>/dev/null) || return 0
  curl -fs -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$(($1 + 2))/api/v1/namespaces/default/inferenceservices/xgboost-iris/replicas" |
    tr '{}' '\n\n' | grep '"phase":"Ready"' | grep -o "\"$2\":[0-9]*" | cut -d: -f2 || true
}
updir() { if [ "$1" = "$PORT" ]; then echo data; else echo data-inproc; fi; }

# await_up PID PORT: waits until that ferry up answers a predict through its
# ingress; prints its replica's HTTP port.
await_up() {
  local pid=$1 port=$2 rport
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "ferry up exited; its log:" >&2
      cat "$OUT/$(updir "$port").log" >&2
      exit 1
    fi
    rport=$(replica "$port" httpPort | head -1)
    if [ -n "$rport" ] && curl -fs -o /dev/null -H "Host: $HOST" -H 'Content-Type: application/json' \
      -d '{"instances": [[6.8, 2.8, 4.8, 1.4]]}' "http://127.0.0.1:$port$PATH_V1"; then
      echo "$rport"
      return
    fi
    sleep 0.2
  done
  echo "the ingress on $port did not answer a predict in 60 s; log in $OUT" >&2
  exit 1
}

# The process-replica ferry up always runs: its replica is the reference.
# ferry up serves this predictor in-process by default, and the reference
# must be a process replica: turn that off (builds from before the flag
# have process replicas only).
PROC_FLAGS=()
if "$BIN" up --help 2>&1 | grep -q -- --in-process-predictors; then
  PROC_FLAGS=(--in-process-predictors=false)
fi
start_up data "$PORT" "${PROC_FLAGS[@]}"
UP_PID=$!
UP_PIDS+=("$UP_PID")
IP_PORT=$((PORT + 10)) IP_PID=
if [[ " $MODES " == *" inproc "* ]]; then
  start_up data-inproc "$IP_PORT" --in-process-predictors=true
  IP_PID=$!
  UP_PIDS+=("$IP_PID")
fi
RPORT=$(await_up "$UP_PID" "$PORT")
if [ -n "$IP_PID" ]; then
  await_up "$IP_PID" "$IP_PORT" >/dev/null
  if [ "$(replica "$IP_PORT" pid | head -1)" != "$IP_PID" ]; then
    echo "the --in-process-predictors ferry up's replica is not in its process" >&2
    exit 1
  fi
fi
RPID=$(replica "$PORT" pid | head -1)
CLK_TCK=$(getconf CLK_TCK)
# cpu_us PID: the process's user+system CPU time so far, in microseconds.
cpu_us() {
  awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1e6 / hz }' "/proc/$1/stat"
}
echo "== $(date -u +%FT%TZ) $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(go version | cut -d' ' -f3)"
echo "== ferry up (pid $UP_PID) on CPU 0: ingress 127.0.0.1:$PORT, replica 127.0.0.1:$RPORT (pid $RPID); wrk on CPU 1: $THREADS thread(s), $CONNS connections, $DURATION, $ROUNDS rounds; modes: $MODES"
if [ -n "$IP_PID" ]; then
  echo "== ferry up --in-process-predictors (pid $IP_PID) on CPU 0: ingress 127.0.0.1:$IP_PORT"
fi

# load NAME URL PID1 PID2 [WRK ARGS...]: one wrk run; prints its rps
# (integer), then PID1's and PID2's CPU microseconds per request.
load() {
  local name=$1 url=$2 p1=$3 p2=$4 out=$OUT/$1.$round.wrk u0 r0
  shift 4
  u0=$(cpu_us "$p1") r0=$(cpu_us "$p2")
  taskset -c 1 wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --latency -s "$LUA" "$@" "$url" >"$out"
  if grep -q 'Non-2xx\|Socket errors' "$out"; then
    echo "$name round $round had errors:" >&2
    cat "$out" >&2
    exit 1
  fi
  awk -v du=$(($(cpu_us "$p1") - u0)) -v dr=$(($(cpu_us "$p2") - r0)) \
    '/requests in/ { n = $1 } /^Requests\/sec:/ { rps = $2 } END { printf "%.0f %.1f %.1f\n", rps, du / n, dr / n }' "$out"
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", 100 * a / b }'; }
ING=() REP=() CPUR=() IPS=() IPCPUR=()
for round in $(seq 1 "$ROUNDS"); do
  order=$MODES
  if [ $((round % 2)) -eq 0 ]; then # alternate which mode runs first
    order=$(printf '%s\n' $MODES | tac | tr '\n' ' ')
  fi
  i= iu= ir= p= pu=
  for m in $order; do
    case $m in
    hop) read -r i iu ir < <(load ingress "http://127.0.0.1:$PORT$PATH_V1" "$UP_PID" "$RPID" -H "Host: $HOST") ;;
    inproc) read -r p pu _ < <(load inproc "http://127.0.0.1:$IP_PORT$PATH_V1" "$IP_PID" "$UP_PID" -H "Host: $HOST") ;;
    esac
  done
  read -r r _ rr < <(load replica "http://127.0.0.1:$RPORT$PATH_V1" "$UP_PID" "$RPID")
  REP+=("$r")
  line="   round $round: replica alone $r rps ($rr us)"
  if [ -n "$i" ]; then
    c=$(awk -v a="$rr" -v u="$iu" -v b="$ir" 'BEGIN { printf "%.0f", 100 * a / (u + b) }')
    ING+=("$i") CPUR+=("$c")
    line+="   hop: $i rps (ingress $iu us + replica $ir us) ratio $(pct "$i" "$r") %, by CPU $c %"
  fi
  if [ -n "$p" ]; then
    c=$(pct "$rr" "$pu")
    IPS+=("$p") IPCPUR+=("$c")
    line+="   in-process: $p rps ($pu us) ratio $(pct "$p" "$r") %, by CPU $c %"
  fi
  echo "$line"
done

# range VALUES...: "min–max".
range() { printf '%s\n' "$@" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%d–%d", lo, hi }'; }
med() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mr=$(med "${REP[@]}")
echo
echo "replica alone:     $(range "${REP[@]}") rps (median $mr)"
if [ ${#ING[@]} -gt 0 ]; then
  mi=$(med "${ING[@]}")
  echo "ingress + replica: $(range "${ING[@]}") rps (median $mi)"
  echo "ratio of medians:  $(pct "$mi" "$mr") % (target >= 60 %)"
  echo "ratio by CPU:      $(range "${CPUR[@]}") %"
fi
if [ ${#IPS[@]} -gt 0 ]; then
  mp=$(med "${IPS[@]}")
  echo "in-process ingress: $(range "${IPS[@]}") rps (median $mp)"
  echo "in-process ratio of medians: $(pct "$mp" "$mr") % (target >= 60 %)"
  echo "in-process ratio by CPU:     $(range "${IPCPUR[@]}") %"
fi
n=$(replica "$PORT" httpPort | wc -l)
echo "replicas Ready at the end: $n; wrk outputs in $OUT"
