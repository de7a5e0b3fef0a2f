#!/usr/bin/env bash
# bench-ingress: what the `ferry up` ingress hop costs (issue 15's ingress
# target: ingress + replica >= 60 % of the replica alone).
#
# It builds ferry, starts `ferry up` on loopback pinned to CPU 0 (taskset;
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
# Knobs (environment): BENCH_ROUNDS (3), BENCH_DURATION (10s),
# BENCH_CONNECTIONS (16), BENCH_THREADS (1), BENCH_PORT_BASE (18180: ingress
# HTTP, +1 gRPC, +2 management API), BENCH_OUT (default a new
# /tmp/ferry-bench-ingress.*), BIN (default: build ./cmd/ferry into BENCH_OUT).
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
DATA=$OUT/data
mkdir -p "$DATA"

UP_PID=
stop() {
  if [ -n "$UP_PID" ]; then
    kill -TERM "$UP_PID" 2>/dev/null || true
    wait "$UP_PID" 2>/dev/null || true
  fi
}
trap stop EXIT
trap 'exit 130' INT TERM

taskset -c 0 "$BIN" up -f "$OUT/xgboost-iris.yaml" --data-dir "$DATA" --host 127.0.0.1 \
  --http-port "$PORT" --grpc-port $((PORT + 1)) --api-addr "127.0.0.1:$((PORT + 2))" \
  --log-format text --log-level warn >"$OUT/up.log" 2>&1 &
UP_PID=$!

# replica FIELD: httpPort or pid of the service's Ready replicas, one a line.
replica() {
  local token
  token=$(cat "$DATA/api-token" 2>/dev/null) || return 0
  curl -fs -H "Authorization: Bearer $token" \
    "http://127.0.0.1:$((PORT + 2))/api/v1/namespaces/default/inferenceservices/xgboost-iris/replicas" |
    tr '{}' '\n\n' | grep '"phase":"Ready"' | grep -o "\"$1\":[0-9]*" | cut -d: -f2 || true
}
replica_port() { replica httpPort | head -1; }

RPORT=
for _ in $(seq 1 300); do
  if ! kill -0 "$UP_PID" 2>/dev/null; then
    echo "ferry up exited; its log:" >&2
    cat "$OUT/up.log" >&2
    exit 1
  fi
  RPORT=$(replica_port)
  if [ -n "$RPORT" ] && curl -fs -o /dev/null -H "Host: $HOST" -H 'Content-Type: application/json' \
    -d '{"instances": [[6.8, 2.8, 4.8, 1.4]]}' "http://127.0.0.1:$PORT$PATH_V1"; then
    break
  fi
  RPORT=
  sleep 0.2
done
if [ -z "$RPORT" ]; then
  echo "the ingress did not answer a predict in 60 s; log in $OUT/up.log" >&2
  exit 1
fi
RPID=$(replica pid | head -1)
CLK_TCK=$(getconf CLK_TCK)
# cpu_us PID: the process's user+system CPU time so far, in microseconds.
cpu_us() {
  awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1e6 / hz }' "/proc/$1/stat"
}
echo "== $(date -u +%FT%TZ) $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(go version | cut -d' ' -f3)"
echo "== ferry up (pid $UP_PID) on CPU 0: ingress 127.0.0.1:$PORT, replica 127.0.0.1:$RPORT; wrk on CPU 1: $THREADS thread(s), $CONNS connections, $DURATION, $ROUNDS rounds"

# load NAME URL [HEADER]: one wrk run; prints its rps (integer), then the
# ingress's and the replica's CPU microseconds per request.
load() {
  local name=$1 url=$2 out=$OUT/$1.$round.wrk u0 r0
  shift 2
  u0=$(cpu_us "$UP_PID") r0=$(cpu_us "$RPID")
  taskset -c 1 wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --latency -s "$LUA" "$@" "$url" >"$out"
  if grep -q 'Non-2xx\|Socket errors' "$out"; then
    echo "$name round $round had errors:" >&2
    cat "$out" >&2
    exit 1
  fi
  awk -v du=$(($(cpu_us "$UP_PID") - u0)) -v dr=$(($(cpu_us "$RPID") - r0)) \
    '/requests in/ { n = $1 } /^Requests\/sec:/ { rps = $2 } END { printf "%.0f %.1f %.1f\n", rps, du / n, dr / n }' "$out"
}

ING=() REP=() CPUR=()
for round in $(seq 1 "$ROUNDS"); do
  read -r i iu ir < <(load ingress "http://127.0.0.1:$PORT$PATH_V1" -H "Host: $HOST")
  read -r r _ rr < <(load replica "http://127.0.0.1:$RPORT$PATH_V1")
  c=$(awk -v a="$rr" -v u="$iu" -v b="$ir" 'BEGIN { printf "%.0f", 100 * a / (u + b) }')
  ING+=("$i") REP+=("$r") CPUR+=("$c")
  printf '   round %s: ingress %6s rps (CPU/request: ingress %5s us + replica %5s us)   replica alone %6s rps (%5s us)   ratio %3s %%, by CPU %3s %%\n' \
    "$round" "$i" "$iu" "$ir" "$r" "$rr" "$(awk -v a="$i" -v b="$r" 'BEGIN { printf "%.0f", 100 * a / b }')" "$c"
done

# range VALUES...: "min–max".
range() { printf '%s\n' "$@" | sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%d–%d", lo, hi }'; }
med() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mi=$(med "${ING[@]}") mr=$(med "${REP[@]}")
echo
echo "ingress + replica: $(range "${ING[@]}") rps (median $mi)"
echo "replica alone:     $(range "${REP[@]}") rps (median $mr)"
echo "ratio of medians:  $(awk -v a="$mi" -v b="$mr" 'BEGIN { printf "%.0f", 100 * a / b }') % (target >= 60 %)"
echo "ratio by CPU:      $(range "${CPUR[@]}") %"
n=$(replica_port | wc -l)
echo "replicas Ready at the end: $n; wrk outputs in $OUT"
