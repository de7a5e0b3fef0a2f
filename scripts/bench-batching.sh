#!/usr/bin/env bash
# Batching benchmark: V2 REST throughput and latency for the ONNX MLP example
# (whose per-row cost falls with batch size) with and without
# --enable-batcher, at 1, 16 and 64 concurrent clients. Loopback only; stops
# the servers it starts.
#
#   scripts/bench-batching.sh            # 5 s per run
#   DURATION=10s scripts/bench-batching.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
BIN=${BIN:-bin/ferry}
export PATH="$(go env GOPATH)/bin:$PATH"
command -v hey >/dev/null || go install github.com/rakyll/hey@v0.1.5
[ -x "$BIN" ] || make build >/dev/null
BODY=$(mktemp)
trap 'rm -f "$BODY"; kill $P1 $P2 2>/dev/null || true' EXIT
# One row per request; 8 features.
echo '{"inputs":[{"name":"input","shape":[1,8],"datatype":"FP32","data":[1.44,0.057,0.029,0.40,-0.077,-0.79,-0.16,-0.47]}]}' > "$BODY"
"$BIN" serve --model-dir examples/models/onnx-mlp --host 127.0.0.1 --http-port 19180 --grpc-port 19181 --log-level error & P1=$!
"$BIN" serve --model-dir examples/models/onnx-mlp --host 127.0.0.1 --http-port 19280 --grpc-port 19281 --log-level error \
  --enable-batcher --max-batchsize 64 --max-latency 2ms & P2=$!
for p in 19180 19280; do
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$p/v2/health/ready" >/dev/null && break; sleep 0.1; done
done
printf "| batcher | clients | rps | p50 | p99 | non-2xx |\n|---|---|---|---|---|---|\n"
for c in 1 16 64; do
  for p in 19180 19280; do
    out=$(hey -z "$DURATION" -c "$c" -m POST -T application/json -D "$BODY" "http://127.0.0.1:$p/v2/models/onnx-mlp/infer")
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    p50=$(awk '/ 50%% in/ {print $3*1000}' <<<"$out")
    p99=$(awk '/ 99%% in/ {print $3*1000}' <<<"$out")
    bad=$(awk '/^  \[[0-9]+\]/ {gsub(/[\[\]]/,"",$1); if ($1 != "200") n+=$2} END {print n+0}' <<<"$out")
    name=off; [ $p = 19280 ] && name="on (64 rows / 2 ms)"
    printf "| %s | %d | %s | %.2f ms | %.2f ms | %s |\n" "$name" "$c" "$rps" "$p50" "$p99" "$bad"
  done
done
