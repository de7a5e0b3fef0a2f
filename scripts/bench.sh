#!/usr/bin/env bash
# make bench: load-test Ferry's data plane on loopback and compare it with
# bare handlers that do the same wire work (see docs/benchmarks.md).
#
# It starts two servers on 127.0.0.1, both for the model "bench":
#   ferry  $BIN serve --model-dir bench/model --model-name bench
#          (a 100-tree depth-6 binary:logistic XGBoost model, 20 features)
#   bare   bench/bare: the same decoders, a constant answer, no model
# checks that Ferry answers what XGBoost answers, then for V1 REST, V2 REST
# (hey) and V2 gRPC (ghz), batch 1 and 64:
#   - closed loop (max rps): BENCH_ROUNDS rounds of BENCH_ROUND_DURATION,
#     alternating bare and ferry so both see the same background load; the
#     best round counts;
#   - rate-limited to half of that best rps for BENCH_DURATION: its p99 is
#     the latency target.
# Each run also records the server's CPU time (from /proc), so CPU per
# request can be compared even when other processes steal cores.
# It prints rps, p50, p99, CPU per request and non-2xx counts per server,
# and Ferry/bare per case; it exits non-zero if any request failed. Only the
# processes it starts are stopped, by PID.
#
# Knobs (environment): BENCH_ROUNDS (2), BENCH_ROUND_DURATION (5s),
# BENCH_DURATION (10s, the half-rate run), BENCH_CONCURRENCY (32 closed-loop
# workers), BENCH_HALF_CONCURRENCY (16 rate-limited workers: hey limits each
# worker, and more workers keep the rate when one request is slow),
# BENCH_OUT (results directory; default a new /tmp/ferry-bench.*),
# BENCH_PROTOS ("v1 v2 grpc"), BENCH_BATCHES ("1 64"), BIN (bin/ferry),
# BENCH_PORT_BASE (18080: ferry 18080/18081, bare 18082/18083).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${BENCH_ROUNDS:-2}
ROUND_DURATION=${BENCH_ROUND_DURATION:-5s}
DURATION=${BENCH_DURATION:-10s}
CONC=${BENCH_CONCURRENCY:-32}
HALF_CONC=${BENCH_HALF_CONCURRENCY:-16}
PROTOS=${BENCH_PROTOS:-v1 v2 grpc}
BATCHES=${BENCH_BATCHES:-1 64}
BIN=${BIN:-bin/ferry}
PORT=${BENCH_PORT_BASE:-18080}
FERRY_HTTP=$PORT FERRY_GRPC=$((PORT + 1)) BARE_HTTP=$((PORT + 2)) BARE_GRPC=$((PORT + 3))
OUT=${BENCH_OUT:-$(mktemp -d /tmp/ferry-bench.XXXXXX)}
mkdir -p "$OUT"
GOBIN_DIR="$(go env GOPATH)/bin"
export PATH="$GOBIN_DIR:$PATH"
PROTO=api/inference/grpc_predict_v2.proto
CALL=inference.GRPCInferenceService/ModelInfer

# The load tools, pinned to the versions the numbers were taken with; a
# go-installed binary reports its module version to `go version -m`.
need_tool() { # need_tool NAME MODULE_PATH PACKAGE VERSION
  local bin
  bin=$(command -v "$1" || true)
  if [ -n "$bin" ] && go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+$2[[:space:]]+$4([[:space:]]|$)"; then
    return 0
  fi
  echo "== installing $1 $4 (go install $3@$4)"
  go install "$3@$4"
}
need_tool hey github.com/rakyll/hey github.com/rakyll/hey v0.1.5
need_tool ghz github.com/bojand/ghz github.com/bojand/ghz/cmd/ghz v0.93.0
if [ ! -x "$BIN" ]; then
  echo "$BIN is missing; run make build (make bench does)" >&2
  exit 1
fi
echo "== building bench/bare and bench/report into $OUT/bin"
go build -o "$OUT/bin/bare" ./bench/bare
go build -o "$OUT/bin/report" ./bench/report
REPORT="$OUT/bin/report"

PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap stop_all EXIT
trap 'exit 130' INT TERM

"$BIN" serve --model-dir bench/model --model-name bench --host 127.0.0.1 \
  --http-port "$FERRY_HTTP" --grpc-port "$FERRY_GRPC" --log-format text --log-level warn >"$OUT/ferry.log" 2>&1 &
PIDS+=($!)
FERRY_PID=$!
"$OUT/bin/bare" -host 127.0.0.1 -http-port "$BARE_HTTP" -grpc-port "$BARE_GRPC" -model-name bench >"$OUT/bare.log" 2>&1 &
PIDS+=($!)
BARE_PID=$!

# wait_ready PID HTTP_PORT: until a V1 predict on the bench model answers 200.
wait_ready() {
  local pid=$1 port=$2
  for _ in $(seq 1 200); do
    if curl -fs -o /dev/null -H 'Content-Type: application/json' -d @bench/payloads/v1-b1.json \
      "http://127.0.0.1:$port/v1/models/bench:predict"; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "server on port $port exited; its log:" >&2
      cat "$OUT"/*.log >&2
      return 1
    fi
    sleep 0.1
  done
  echo "server on port $port did not answer a V1 predict in 20 s; logs in $OUT" >&2
  curl -s -X POST "http://127.0.0.1:$port/v2/repository/index" >&2 || true
  return 1
}
wait_ready "$FERRY_PID" "$FERRY_HTTP"
wait_ready "$BARE_PID" "$BARE_HTTP"

# Ferry must answer what XGBoost answers before its speed means anything.
for b in $BATCHES; do
  curl -fs -H 'Content-Type: application/json' -d "@bench/payloads/v1-b$b.json" \
    "http://127.0.0.1:$FERRY_HTTP/v1/models/bench:predict" >"$OUT/answer.v1.b$b.json"
  curl -fs -H 'Content-Type: application/json' -d "@bench/payloads/v2-b$b.json" \
    "http://127.0.0.1:$FERRY_HTTP/v2/models/bench/infer" >"$OUT/answer.v2.b$b.json"
  protos="v1 v2"
  if command -v grpcurl >/dev/null 2>&1; then # optional: make tools installs it
    grpcurl -plaintext -d @ "127.0.0.1:$FERRY_GRPC" "$CALL" <"bench/payloads/grpc-b$b.json" >"$OUT/answer.grpc.b$b.json"
    protos="v1 v2 grpc"
  fi
  for p in $protos; do
    printf '== ferry %s batch %s: ' "$p" "$b"
    "$REPORT" check "bench/payloads/expected-b$b.json" "$OUT/answer.$p.b$b.json"
  done
done

CLK_TCK=$(getconf CLK_TCK)
# cpu_us PID: the process's user+system CPU time so far, in microseconds.
cpu_us() {
  awk -v hz="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.0f\n", ($12 + $13) * 1e6 / hz }' "/proc/$1/stat"
}

# load SERVER PROTO BATCH MODE DURATION CONCURRENCY [RATE]: one run, written
# to $OUT/SERVER.PROTO.bBATCH.MODE.{hey,ghz} with the server's CPU time in
# microseconds beside it (.cpu); prints the run's rps.
load() {
  local server=$1 proto=$2 batch=$3 mode=$4 dur=$5 conc=$6 rate=${7:-0}
  local http=$FERRY_HTTP grpc=$FERRY_GRPC pid=$FERRY_PID
  if [ "$server" = bare ]; then http=$BARE_HTTP grpc=$BARE_GRPC pid=$BARE_PID; fi
  local ext=hey
  if [ "$proto" = grpc ]; then ext=ghz; fi
  local out="$OUT/$server.$proto.b$batch.$mode.$ext"
  local limit=() cpu0
  cpu0=$(cpu_us "$pid")
  case $proto in
  grpc)
    if [ "$rate" -gt 0 ]; then limit=(--rps "$rate"); fi
    ghz --insecure --proto "$PROTO" --call "$CALL" -D "bench/payloads/grpc-b$batch.json" \
      -z "$dur" -c "$conc" --connections 2 "${limit[@]}" -O json "127.0.0.1:$grpc" >"$out.tmp"
    ;;
  v1 | v2)
    local url="http://127.0.0.1:$http/v1/models/bench:predict"
    if [ "$proto" = v2 ]; then url="http://127.0.0.1:$http/v2/models/bench/infer"; fi
    # hey's -q is per worker.
    if [ "$rate" -gt 0 ]; then limit=(-q "$(awk -v r="$rate" -v c="$conc" 'BEGIN { printf "%.3f", r / c }')"); fi
    hey -z "$dur" -c "$conc" "${limit[@]}" -m POST -T application/json \
      -D "bench/payloads/$proto-b$batch.json" "$url" >"$out.tmp"
    ;;
  esac
  echo $(($(cpu_us "$pid") - cpu0)) >"$out.cpu"
  mv "$out.tmp" "$out"
  "$REPORT" rps "$out"
}

echo "== $(date -u +%FT%TZ) $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(go version | cut -d' ' -f3)"
echo "== closed loop: $ROUNDS x $ROUND_DURATION, $CONC workers; then $DURATION at half the best rps, $HALF_CONC workers; results in $OUT"
for proto in $PROTOS; do
  for b in $BATCHES; do
    declare -A best=([bare]=0 [ferry]=0)
    for r in $(seq 1 "$ROUNDS"); do
      for server in bare ferry; do
        rps=$(load "$server" "$proto" "$b" "max$r" "$ROUND_DURATION" "$CONC")
        if [ "$rps" -gt "${best[$server]}" ]; then best[$server]=$rps; fi
        printf '   %-5s %-4s batch %-3s round %s: %7s rps\n' "$server" "$proto" "$b" "$r" "$rps"
      done
    done
    for server in bare ferry; do
      target=$((best[$server] / 2))
      rps=$(load "$server" "$proto" "$b" half "$DURATION" "$HALF_CONC" "$target")
      printf '   %-5s %-4s batch %-3s half:    %7s rps of %s\n' "$server" "$proto" "$b" "$rps" "$target"
    done
  done
done

echo
"$REPORT" table -md "$OUT" >"$OUT/results.md" || true
"$REPORT" table "$OUT"
echo
echo "Markdown tables: $OUT/results.md"
