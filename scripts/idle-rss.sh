#!/usr/bin/env bash
# Memory of `ferry serve --model-dir examples/models` (issue 15's measure):
# VmRSS, anonymous and file-backed resident memory 5 s after the models are
# loaded, right after 1 000 requests over the five models, and after 65 s
# of idleness (ferry gives start-up's and a burst's pages of its binary back
# after an idle interval: internal/memtrim).
# Usage: scripts/idle-rss.sh [BIN]   (default bin/ferry; run `make build` first)
set -euo pipefail
BIN=${1:-bin/ferry}
PORT=${PORT:-18380}
LOG=$(mktemp)
"$BIN" serve --model-dir examples/models --host 127.0.0.1 --http-port "$PORT" --grpc-port $((PORT + 1)) --log-format json 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do
  grep -q '"models loaded"' "$LOG" && break
  sleep 0.1
done
sleep 5
mem() { grep -E 'VmRSS|RssAnon|RssFile' /proc/$PID/status | tr -s ' \t\n' ' '; echo; }
echo "idle after start:    $(mem)"
for _ in $(seq 1 200); do
  curl -s -d @examples/requests/iris-v2.json "localhost:$PORT/v2/models/xgboost-iris/infer" >/dev/null
  curl -s -d @examples/requests/lightgbm-v2.json "localhost:$PORT/v2/models/lightgbm-multiclass/infer" >/dev/null
  curl -s -d @examples/requests/pmml-v1.json "localhost:$PORT/v1/models/pmml-iris:predict" >/dev/null
  curl -s -d @examples/requests/onnx-v2.json "localhost:$PORT/v2/models/onnx-mlp/infer" >/dev/null
  curl -s -d @examples/requests/iris-v1.json "localhost:$PORT/v1/models/sklearn-iris:predict" >/dev/null
done
echo "after 1000 requests: $(mem)"
sleep 65
echo "65 s idle:           $(mem)"
