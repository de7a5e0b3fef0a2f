#!/bin/sh
# Attacks on a served image model: run from the repository root after
# `make build` (docs/trust.md shows the output).
set -e
bin/ferry serve --model-dir examples/attack/models/onnx-digits --http-port 9401 --grpc-port 9402 --log-format text 2>/tmp/serve-digits.log &
SERVE=$!
# SquareAttack in an L-inf ball of 0.1 (pixels are in [0, 1]); V2, as the ONNX model takes [N, 8, 8] FP32.
bin/ferry attack SquareAttack --model-name onnx-digits --predictor-host 127.0.0.1:9401 \
  --predictor-protocol v2 --predictor-input-name input \
  --http-port 9403 --nb_classes 10 --eps 0.1 --max_iter 1000 --clip_values 0,1 --log-format text 2>/tmp/attack-square.log &
SQUARE=$!
# HopSkipJump: the smallest L2 change it finds, refused beyond 2.
bin/ferry attack HopSkipJump --model-name onnx-digits --predictor-host 127.0.0.1:9401 \
  --predictor-protocol v2 --predictor-input-name input \
  --http-port 9404 --clip_values 0,1 --eps 2 --max_iter 20 --max_eval 1000 --log-format text 2>/tmp/attack-hsj.log &
HSJ=$!
sleep 2
for port in 9403 9404; do
  # everything after the 8x8 adversarial_example
  curl -s -d @examples/attack/digits-request.json localhost:$port/v1/models/onnx-digits:explain | grep -o '"L2 error".*'
done
kill $SERVE $SQUARE $HSJ
