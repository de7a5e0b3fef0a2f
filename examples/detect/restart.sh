#!/bin/sh
# Logger -> detector -> metrics, with a kill -9 of the detector half-way
# through a window: run from the repository root after `make build`
# (docs/trust.md shows the output).
set -e
rm -rf /tmp/detect-state
awk -v n=1000 -v shift=0 -v seed=1 -f examples/detect/gen.awk > /tmp/reference.csv
bin/ferry detect --reference /tmp/reference.csv --http-port 9300 --window-size 500 \
  --outlier mahalanobis --state-dir /tmp/detect-state --log-format text 2>/tmp/detect.log &
DETECT=$!
bin/ferry serve --model-dir examples/models/sklearn-iris --http-port 9301 --grpc-port 9302 \
  --log-url http://127.0.0.1:9300/ --inference-service iris --namespace default --log-format text 2>/tmp/serve.log &
SERVE=$!
sleep 2
send() {  # $3 requests of 20 rows, traffic shifted by $1 sd
  for i in $(seq $2 $(($2 + $3 - 1))); do
    awk -v n=20 -v shift=$1 -v seed=$i -v json=1 -f examples/detect/gen.awk |
      curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @- \
        http://127.0.0.1:9301/v1/models/sklearn-iris:predict
  done
}
send 0.5 201 15; sleep 1
curl -s localhost:9300/metrics | grep -E '^ferry_detect_(window_rows|instances_total|outliers_total)'
kill -9 $DETECT; sleep 0.5
bin/ferry detect --reference /tmp/reference.csv --http-port 9300 --window-size 500 \
  --outlier mahalanobis --state-dir /tmp/detect-state --log-format text 2>>/tmp/detect.log &
DETECT=$!
sleep 1
curl -s localhost:9300/metrics | grep -E '^ferry_detect_window_rows'
send 0.5 216 10; sleep 1
curl -s localhost:9300/metrics | grep -E '^ferry_detect_drift(_p_value)?\{'
kill $DETECT $SERVE
