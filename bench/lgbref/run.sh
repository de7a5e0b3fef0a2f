#!/usr/bin/env bash
# Ferry's LightGBM runtime against LightGBM's own predictor, one core each,
# in one run.
#
#   LIGHTGBM_DIR=DIR bench/lgbref/run.sh [rounds]           wall and CPU ns/row, alternating
#   LIGHTGBM_DIR=DIR LGBREF_CALLGRIND=1 bench/lgbref/run.sh  instructions per row instead
#
# DIR is a LightGBM source tree built with CMake (it holds include/ and
# lib_lightgbm.so); docs/benchmarks.md says how to build one. Ferry's tests
# never need it.
#
# Timing: each round runs bench/lgbref (Model.Predict, GOMAXPROCS=1) and
# bench/lgbref/capi (LightGBM's C API, num_threads=1) on the same model
# (internal/runtime/lightgbm/testdata/bench_binary/model.txt) and the same
# rows, at batch 1 (LGBM_BoosterPredictForMatSingleRowFast, one row per call,
# cycling through 1024 rows) and 100 000 rows (LGBM_BoosterPredictForMat),
# back to back, Ferry first in odd rounds and LightGBM first in even ones,
# and prints LightGBM ÷ Ferry for each batch in wall and CPU time. Compare
# CPU columns on a busy machine.
#
# Callgrind: each side predicts LGBREF_ROWS (10 000) rows once, and then one
# row once, under valgrind; the report gives the instructions and the
# mispredicted conditional branches (callgrind's simple predictor, a model
# rather than the CPU's) inside Model.Predict and inside
# LGBM_BoosterPredictForMat (or LGBM_BoosterPredictForMatSingleRowFast for
# one row) per row. Counts do not depend on machine load.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LIGHTGBM_DIR:?set LIGHTGBM_DIR to a LightGBM source tree built with CMake (see docs/benchmarks.md)}"
ROUNDS=${1:-3}
ROWS=${LGBREF_ROWS:-10000}
MODEL=internal/runtime/lightgbm/testdata/bench_binary/model.txt
OUT=$(mktemp -d /tmp/lgbref.XXXXXX)
go build -o "$OUT/ferry" ./bench/lgbref
cc -O2 -w -o "$OUT/lightgbm" bench/lgbref/capi/lgbref.c -I"$LIGHTGBM_DIR/include" \
	-L"$LIGHTGBM_DIR" -l_lightgbm -Wl,-rpath,"$LIGHTGBM_DIR" -lm

ferry() { GOMAXPROCS=1 "$OUT/ferry" -model "$MODEL" "$@"; }
lightgbm() { OMP_NUM_THREADS=1 "$OUT/lightgbm" "$@"; }

if [[ -z "${LGBREF_CALLGRIND:-}" ]]; then
	echo "# $(uptime)"
	for i in $(seq "$ROUNDS"); do
		echo "## round $i"
		if ((i % 2)); then
			ferry | tee "$OUT/f.$i"
			lightgbm time "$MODEL" | tee "$OUT/l.$i"
		else
			lightgbm time "$MODEL" | tee "$OUT/l.$i"
			ferry | tee "$OUT/f.$i"
		fi
		# Lines end "W ns/row wall, C ns/row CPU"; the batch is the word
		# before the colon.
		join <(awk -F'[ :]+' '/ns\/row/ {print $(NF-6), $(NF-5), $(NF-2)}' "$OUT/f.$i" | sort) \
			<(awk -F'[ :]+' '/ns\/row/ {print $(NF-6), $(NF-5), $(NF-2)}' "$OUT/l.$i" | sort) |
			sort -n | awk '{printf "batch %6d: LightGBM / Ferry = %.2f wall, %.2f CPU\n", $1, $4 / $2, $5 / $3}'
	done
	echo "# $(uptime)"
	exit 0
fi

# per_row FILE FUNCTION ROWS: inclusive instructions and mispredicted
# conditional branches of FUNCTION, per row.
per_row() {
	callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$1" 2>/dev/null |
		awk -v f="$2" -v n="$3" 'index($0, f) {
			gsub(/\([^)]*\)/, ""); gsub(",", ""); split($0, c, " ")
			printf "%8.0f instructions/row, %6.1f mispredicted branches/row\n", c[1] / n, c[3] / n; exit }'
}
for n in "$ROWS" 1; do
	# Go's preemption signals can trip callgrind's signal handling.
	GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --branch-sim=yes --callgrind-out-file="$OUT/ferry.$n" \
		"$OUT/ferry" -model "$MODEL" -once -rows "$n" >/dev/null 2>&1
	OMP_NUM_THREADS=1 valgrind --tool=callgrind --branch-sim=yes --callgrind-out-file="$OUT/lightgbm.$n" \
		"$OUT/lightgbm" once "$MODEL" "$n" >/dev/null 2>&1
	fn=LGBM_BoosterPredictForMat
	((n == 1)) && fn=LGBM_BoosterPredictForMatSingleRowFast
	echo "batch $n: ferry    $(per_row "$OUT/ferry.$n" 'lightgbm.(*Model).Predict ' "$n")"
	echo "batch $n: lightgbm $(per_row "$OUT/lightgbm.$n" "$fn " "$n")"
done
echo "callgrind files in $OUT"
