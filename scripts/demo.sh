#!/usr/bin/env bash
# make demo: run `ferry up` with the InferenceServices in
# examples/inferenceservices (XGBoost, scikit-learn, LightGBM and PMML
# models from examples/models), then show curl (V1 and V2 REST) and grpcurl
# (V2 gRPC) calls that work against them through the ingress, and a
# multi-model server with two TrainedModels.
# In a terminal Ferry keeps serving until Ctrl-C; otherwise it stops after
# the calls, so the demo can run unattended.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT=${DEMO_HTTP_PORT:-8080}
GRPC_PORT=${DEMO_GRPC_PORT:-8081}
API_PORT=${DEMO_API_PORT:-8090}
BIN=${BIN:-bin/ferry}
export PATH="$(go env GOPATH)/bin:$PATH"
export FERRY_SERVER="http://127.0.0.1:$API_PORT"

if ! command -v grpcurl >/dev/null 2>&1; then
  echo "== installing grpcurl (go install)"
  go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
fi

DATA=$(mktemp -d -t ferry-demo-XXXXXX)
echo "== starting: $BIN up -f examples/inferenceservices --data-dir $DATA --http-port $HTTP_PORT --grpc-port $GRPC_PORT --api-addr 127.0.0.1:$API_PORT"
"$BIN" up -f examples/inferenceservices --data-dir "$DATA" --host 127.0.0.1 \
  --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" --api-addr "127.0.0.1:$API_PORT" --log-level warn &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null || true; rm -rf "$DATA"' EXIT

all_ready() {
  "$BIN" get isvc 2>/dev/null | awk 'NR>1 {n++; if ($3=="True") r++} END {exit !(n>=6 && n==r)}' &&
    "$BIN" get tm 2>/dev/null | awk 'NR>1 {n++; if ($4=="True") r++} END {exit !(n>=2 && n==r)}'
}
for _ in $(seq 1 300); do
  if all_ready; then break; fi
  if ! kill -0 $PID 2>/dev/null; then echo "ferry up exited; see the log above" >&2; exit 1; fi
  sleep 0.1
done
if ! all_ready; then
  echo "not every InferenceService became ready:" >&2
  "$BIN" get isvc -o wide >&2
  exit 1
fi

run() {
  echo
  echo "$ $(printf "%q " "$@")"
  "$@"
  echo
}

run "$BIN" get isvc
run curl -s -H "Host: sklearn-iris.default.example.com" -d @examples/requests/iris-v1.json \
  "http://127.0.0.1:$HTTP_PORT/v1/models/sklearn-iris:predict"
run curl -s -d @examples/requests/iris-v2.json "http://127.0.0.1:$HTTP_PORT/v2/models/xgboost-iris/infer"
run curl -s -d @examples/requests/lightgbm-v2.json "http://127.0.0.1:$HTTP_PORT/v2/models/lightgbm-multiclass/infer"
run curl -s -d @examples/requests/pmml-v1.json "http://127.0.0.1:$HTTP_PORT/v1/models/pmml-iris:predict"
run curl -s -d @examples/requests/onnx-v2.json "http://127.0.0.1:$HTTP_PORT/v2/models/onnx-mlp/infer"
run "$BIN" get tm
run curl -s -d @examples/requests/iris-v1.json "http://127.0.0.1:$HTTP_PORT/v1/models/iris-b:predict"
run grpcurl -plaintext -authority xgboost-iris.default.example.com -d @ "127.0.0.1:$GRPC_PORT" \
  inference.GRPCInferenceService/ModelInfer < examples/requests/iris-grpc.json

echo "== the reference libraries answer (examples/requests/expected.json):"
cat examples/requests/expected.json

# The native ONNX engine: ONNX Runtime's library from the npm package
# onnxruntime-node and a cgo build with -tags onnxruntime (skipped, with a
# note, where npm or a C compiler is missing; DEMO_ONNX_NATIVE=0 skips it).
if [ "${DEMO_ONNX_NATIVE:-1}" = 1 ]; then
  echo
  echo "== the ONNX model on ONNX Runtime (native engine)"
  if ORT_LIB=$(bash internal/runtime/onnx/fetch-ort.sh "$HOME/.cache/ferry-ort" 2>/dev/null) &&
     CGO_ENABLED=1 go build -tags onnxruntime -o bin/ferry-onnxruntime ./cmd/ferry 2>/dev/null; then
    ONNX_PORT=$((HTTP_PORT + 20))
    bin/ferry-onnxruntime serve --model-dir examples/models/onnx-mlp --host 127.0.0.1 --http-port "$ONNX_PORT" \
      --grpc-port "$((ONNX_PORT + 1))" --onnx-engine native --onnxruntime-lib "$ORT_LIB" --log-level warn &
    OPID=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$ONNX_PORT/v2/health/ready" >/dev/null 2>&1 && break; sleep 0.1; done
    run curl -s "http://127.0.0.1:$ONNX_PORT/v2/models/onnx-mlp"
    run curl -s -d @examples/requests/onnx-v2.json "http://127.0.0.1:$ONNX_PORT/v2/models/onnx-mlp/infer"
    kill -TERM $OPID 2>/dev/null; wait $OPID 2>/dev/null || true
  else
    echo "(skipped: fetching ONNX Runtime with npm or the cgo build failed; the Go engine above needs neither)"
  fi
fi

echo
echo "== try: $BIN describe isvc xgboost-iris    $BIN logs isvc sklearn-iris    $BIN get isvc -o yaml"
if [ -t 0 ]; then
  echo "Ferry is serving on http://127.0.0.1:$HTTP_PORT (gRPC 127.0.0.1:$GRPC_PORT, API $FERRY_SERVER); Ctrl-C stops it."
  wait $PID
fi
