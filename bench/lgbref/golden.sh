#!/usr/bin/env bash
# Trains LightGBM's benchmark model and writes its golden outputs, with a
# LightGBM built from source (LIGHTGBM_DIR holds include/, lib_lightgbm.so
# and the lightgbm program; see docs/benchmarks.md):
#
#   LIGHTGBM_DIR=DIR bench/lgbref/golden.sh          retrain, rewrite testdata/bench_binary
#   LIGHTGBM_DIR=DIR bench/lgbref/golden.sh check    recompute every single-output fixture, diff
#
# The default writes internal/runtime/lightgbm/testdata/bench_binary/:
# model.txt (the lightgbm CLI, bench/lgbref/train.conf, on 20 000 rows from
# bench/lgbref/gendata), input.csv (gendata -golden) and expected.csv,
# expected_raw.csv and expected_leaf.csv from LightGBM's C API
# (bench/lgbref/capi). "check" runs the C API on the committed models and
# inputs of every fixture with one output per row and compares its numbers
# with the committed expected files, changing nothing. Go's golden tests read
# only the committed files.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LIGHTGBM_DIR:?set LIGHTGBM_DIR to a LightGBM source tree built with CMake (see docs/benchmarks.md)}"
TD=internal/runtime/lightgbm/testdata
OUT=$(mktemp -d /tmp/lgbgolden.XXXXXX)
cc -O2 -w -o "$OUT/lgbref" bench/lgbref/capi/lgbref.c -I"$LIGHTGBM_DIR/include" \
	-L"$LIGHTGBM_DIR" -l_lightgbm -Wl,-rpath,"$LIGHTGBM_DIR" -lm
go build -o "$OUT/gendata" ./bench/lgbref/gendata

if [[ "${1:-}" == check ]]; then
	status=0
	for dir in "$TD"/*/; do
		name=$(basename "$dir")
		[[ -f "$dir/model.txt" && -f "$dir/input.csv" ]] || continue
		mkdir -p "$OUT/$name"
		if ! "$OUT/lgbref" golden "$dir/model.txt" "$dir/input.csv" "$OUT/$name" 2>"$OUT/$name/log"; then
			echo "$name: skipped ($(tail -1 "$OUT/$name/log"))"
			continue
		fi
		for f in expected.csv expected_raw.csv expected_leaf.csv; do
			[[ -f "$dir/$f" ]] || continue
			# Compare numbers, not text: the CLI and printf may spell a
			# double differently. Headers are skipped.
			if paste -d, <(tail -n +2 "$dir/$f") <(tail -n +2 "$OUT/$name/$f") |
				awk -F, '{n = NF / 2; for (i = 1; i <= n; i++) if ($i + 0 != $(i + n) + 0) { print "row " NR ": " $0; bad = 1; exit } } END { exit bad }'; then
				echo "$name/$f: same as LightGBM's C API"
			else
				echo "$name/$f: DIFFERS from LightGBM's C API"
				status=1
			fi
		done
	done
	exit "$status"
fi

DEST=$TD/bench_binary
mkdir -p "$DEST"
"$OUT/gendata" -train "$OUT/train.csv"
(cd "$OUT" && "$LIGHTGBM_DIR/lightgbm" config="$OLDPWD/bench/lgbref/train.conf" data=train.csv output_model=model.txt >train.log)
cp "$OUT/model.txt" "$DEST/model.txt"
"$OUT/gendata" -golden "$DEST/model.txt" "$DEST/input.csv"
"$OUT/lgbref" golden "$DEST/model.txt" "$DEST/input.csv" "$DEST"
echo "wrote $DEST (training log in $OUT/train.log)"
