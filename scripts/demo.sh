#!/usr/bin/env bash
# make demo: serve the example models under examples/models, then show a
# curl (V1 and V2 REST) and a grpcurl (V2 gRPC) call that work against them.
# In a terminal Ferry keeps serving until Ctrl-C; otherwise it stops after
# the calls (so the demo can run unattended).
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT=${DEMO_HTTP_PORT:-8080}
GRPC_PORT=${DEMO_GRPC_PORT:-8081}
BIN=${BIN:-bin/ferry}
export PATH="$(go env GOPATH)/bin:$PATH"

if ! command -v grpcurl >/dev/null 2>&1; then
  echo "== installing grpcurl (go install)"
  go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
fi

echo "== starting: $BIN serve --model-dir examples/models --host 127.0.0.1 --http-port $HTTP_PORT --grpc-port $GRPC_PORT"
"$BIN" serve --model-dir examples/models --host 127.0.0.1 --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" \
  --log-format text --log-level warn &
PID=$!
trap 'kill -TERM $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  if curl -fs "http://127.0.0.1:$HTTP_PORT/v2/health/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 $PID 2>/dev/null; then echo "ferry exited; see the log above" >&2; exit 1; fi
  sleep 0.1
done
if ! curl -fs "http://127.0.0.1:$HTTP_PORT/v2/health/ready" >/dev/null; then
  echo "ferry did not become ready; model states:" >&2
  curl -s -X POST "http://127.0.0.1:$HTTP_PORT/v2/repository/index" >&2; echo >&2
  exit 1
fi

run() {
  echo
  echo "\$ $*"
  "$@"
  echo
}

echo
echo "== Ferry is serving these models:"
curl -s -X POST "http://127.0.0.1:$HTTP_PORT/v2/repository/index"; echo

run curl -s -H 'Content-Type: application/json' -d @examples/requests/iris-v1.json \
  "http://127.0.0.1:$HTTP_PORT/v1/models/sklearn-iris:predict"
run curl -s -H 'Content-Type: application/json' -d @examples/requests/iris-v2.json \
  "http://127.0.0.1:$HTTP_PORT/v2/models/xgboost-iris/infer"
run grpcurl -plaintext -d @ "127.0.0.1:$GRPC_PORT" inference.GRPCInferenceService/ModelInfer < examples/requests/iris-grpc.json
run grpcurl -plaintext "127.0.0.1:$GRPC_PORT" list

echo "== the reference libraries answer (examples/requests/expected.json):"
cat examples/requests/expected.json

if [ -t 0 ]; then
  echo
  echo "Ferry is still serving on http://127.0.0.1:$HTTP_PORT (gRPC 127.0.0.1:$GRPC_PORT); try the commands above. Ctrl-C stops it."
  wait $PID
fi
