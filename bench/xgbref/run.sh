#!/usr/bin/env bash
# Ferry's XGBoost runtime against libxgboost, one core each, in one run.
#
#   bench/xgbref/run.sh [rounds]        wall and CPU ns/row, alternating
#   XGBREF_CALLGRIND=1 bench/xgbref/run.sh   instructions per row instead
#
# Timing: for each round, bench/xgbref (Model.Predict, GOMAXPROCS=1) and
# internal/runtime/xgboost/testdata/gen/bench_libxgboost.py (Debian's
# libxgboost through /usr/bin/python3, Booster.inplace_predict, nthread 1)
# time the same model and batch (batch 1 and 100 000 rows) back to back, so
# both see the same background load. Compare CPU columns on a busy machine.
#
# Callgrind: each side predicts XGBREF_ROWS (10 000) rows once, and then
# one row once, under valgrind; the report gives the instructions inside
# Model.Predict and inside libxgboost's InplacePredictImpl (the C API call
# less argument parsing), per row. Counts do not depend on machine load.
# Python and libxgboost are needed only here, never by the Go tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
ROWS=${XGBREF_ROWS:-10000}
PY=/usr/bin/python3
REF=internal/runtime/xgboost/testdata/gen/bench_libxgboost.py
OUT=$(mktemp -d /tmp/xgbref.XXXXXX)
go build -o "$OUT/xgbref" ./bench/xgbref

if [[ -z "${XGBREF_CALLGRIND:-}" ]]; then
	for i in $(seq "$ROUNDS"); do
		echo "## round $i"
		GOMAXPROCS=1 "$OUT/xgbref"
		OMP_NUM_THREADS=1 "$PY" "$REF" | sed '/first predictions/d'
	done
	exit 0
fi

# per_row FILE FUNCTION ROWS: inclusive instructions and mispredicted
# conditional branches (callgrind's simple predictor model) of FUNCTION,
# per row.
per_row() {
	callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$1" 2>/dev/null |
		awk -v f="$2" -v n="$3" 'index($0, f) {
			gsub(/\([^)]*\)/, ""); gsub(",", ""); split($0, c, " ")
			printf "%8.0f instructions/row, %6.1f mispredicted branches/row\n", c[1] / n, c[3] / n; exit }'
}
for n in "$ROWS" 1; do
	GOMAXPROCS=1 valgrind --tool=callgrind --branch-sim=yes --callgrind-out-file="$OUT/ferry.$n" \
		"$OUT/xgbref" -once -rows "$n" >/dev/null 2>&1
	OMP_NUM_THREADS=1 valgrind --tool=callgrind --branch-sim=yes --callgrind-out-file="$OUT/libxgboost.$n" \
		"$PY" "$REF" --once --rows "$n" >/dev/null 2>&1
	echo "batch $n: ferry      $(per_row "$OUT/ferry.$n" 'xgboost.(*Model).Predict ' "$n")"
	echo "batch $n: libxgboost $(per_row "$OUT/libxgboost.$n" 'InplacePredictImpl(' "$n")"
done
echo "callgrind files in $OUT"
