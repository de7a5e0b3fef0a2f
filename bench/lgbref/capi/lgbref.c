/*
 * lgbref: LightGBM's own predictor, through its C API, on the model and
 * batch bench/lgbref times in Ferry. Built and run by bench/lgbref/run.sh
 * and bench/lgbref/golden.sh against a LightGBM built from source; Ferry's
 * tests never need it.
 *
 *   lgbref time MODEL [ROWS [MIN_SECONDS]]
 *       ns/row (wall and process CPU) of LGBM_BoosterPredictForMat on ROWS
 *       rows (default 100000) and of LGBM_BoosterPredictForMatSingleRowFast
 *       on one row at a time, num_threads=1, probabilities (the default
 *       output). The rows are bench/lgbref's: a 64-bit LCG whose top 24 bits
 *       give values in [-2, 2), about 2 % NaN. Batch 1 cycles through the
 *       first 1024 rows, as bench/lgbref does.
 *   lgbref once MODEL ROWS
 *       predicts ROWS rows once, untimed (for callgrind): one
 *       LGBM_BoosterPredictForMat call, or for one row one
 *       LGBM_BoosterPredictForMatSingleRowFast call.
 *   lgbref golden MODEL INPUT.csv OUTDIR
 *       reads INPUT.csv (a header line, then comma-separated numbers, "nan"
 *       for missing) and writes OUTDIR/expected.csv (probability),
 *       expected_raw.csv (raw score) and expected_leaf.csv (leaf index per
 *       tree) with 17 significant digits, so Go's strconv.ParseFloat reads
 *       back the very doubles LightGBM computed. Every row is also
 *       predicted alone through the single-row fast path, which must agree
 *       bit for bit.
 */
#include <math.h>
#include <stdint.h> /* before c_api.h, whose arrow.h uses int64_t without it */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <LightGBM/c_api.h>

#define PARAMS "num_threads=1"

static void check(int rc, const char *what) {
	if (rc != 0) {
		fprintf(stderr, "lgbref: %s: %s\n", what, LGBM_GetLastError());
		exit(1);
	}
}

static void *xmalloc(size_t n) {
	void *p = malloc(n ? n : 1);
	if (p == NULL) {
		fprintf(stderr, "lgbref: out of memory\n");
		exit(1);
	}
	return p;
}

static BoosterHandle load(const char *path, int *features, int *trees) {
	BoosterHandle b;
	int iters;
	check(LGBM_BoosterCreateFromModelfile(path, &iters, &b), path);
	check(LGBM_BoosterGetNumFeature(b, features), "num features");
	int per_iter;
	check(LGBM_BoosterNumModelPerIteration(b, &per_iter), "models per iteration");
	*trees = iters * per_iter;
	return b;
}

/* bench_input mirrors BenchInput in bench/lgbref/gendata and input in
 * bench/lgbref/main.go. */
static double *bench_input(int64_t rows, int cols) {
	double *out = xmalloc(sizeof(double) * (size_t)(rows * cols));
	uint64_t s = 1;
	for (int64_t i = 0; i < rows * cols; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t top = s >> 40;
		out[i] = top % 50 == 0 ? NAN : (double)top / (double)(1 << 24) * 4 - 2;
	}
	return out;
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double cpu(void) {
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
}

static int time_main(const char *model, int64_t rows, double min_s) {
	int cols, trees;
	BoosterHandle b = load(model, &cols, &trees);
	double *x = bench_input(rows, cols);
	double *out = xmalloc(sizeof(double) * (size_t)rows);
	int64_t len;
	printf("lightgbm C API, num_threads=1, %d trees\n", trees);

	/* Batch 1: the single-row fast path, its configuration made once. */
	FastConfigHandle fast;
	check(LGBM_BoosterPredictForMatSingleRowFastInit(b, C_API_PREDICT_NORMAL, 0, -1, C_API_DTYPE_FLOAT64, cols, PARAMS, &fast), "fast init");
	int64_t cycle = rows < 1024 ? rows : 1024;
	check(LGBM_BoosterPredictForMatSingleRowFast(fast, x, &len, out), "predict one row"); /* warm up */
	double w0 = now(), c0 = cpu(), el;
	int64_t n = 0;
	do {
		for (int k = 0; k < 64; k++, n++) {
			check(LGBM_BoosterPredictForMatSingleRowFast(fast, x + (n % cycle) * cols, &len, out), "predict one row");
		}
	} while ((el = now() - w0) < min_s * 1e9);
	printf("PredictForMatSingleRowFast batch %6d: %10.0f ns/row wall, %10.0f ns/row CPU\n", 1, el / n, (cpu() - c0) / n);
	LGBM_FastConfigFree(fast);

	/* The large batch. */
	check(LGBM_BoosterPredictForMat(b, x, C_API_DTYPE_FLOAT64, (int32_t)rows, cols, 1, C_API_PREDICT_NORMAL, 0, -1, PARAMS, &len, out), "predict batch");
	w0 = now(), c0 = cpu();
	n = 0;
	do {
		check(LGBM_BoosterPredictForMat(b, x, C_API_DTYPE_FLOAT64, (int32_t)rows, cols, 1, C_API_PREDICT_NORMAL, 0, -1, PARAMS, &len, out), "predict batch");
		n++;
	} while ((el = now() - w0) < min_s * 1e9);
	printf("PredictForMat              batch %6lld: %10.0f ns/row wall, %10.0f ns/row CPU\n", (long long)rows, el / (n * rows), (cpu() - c0) / (n * rows));
	LGBM_BoosterFree(b);
	free(x);
	free(out);
	return 0;
}

static int once_main(const char *model, int64_t rows) {
	int cols, trees;
	BoosterHandle b = load(model, &cols, &trees);
	double *x = bench_input(rows, cols);
	double *out = xmalloc(sizeof(double) * (size_t)rows);
	int64_t len;
	if (rows == 1) {
		FastConfigHandle fast;
		check(LGBM_BoosterPredictForMatSingleRowFastInit(b, C_API_PREDICT_NORMAL, 0, -1, C_API_DTYPE_FLOAT64, cols, PARAMS, &fast), "fast init");
		check(LGBM_BoosterPredictForMatSingleRowFast(fast, x, &len, out), "predict one row");
		LGBM_FastConfigFree(fast);
	} else {
		check(LGBM_BoosterPredictForMat(b, x, C_API_DTYPE_FLOAT64, (int32_t)rows, cols, 1, C_API_PREDICT_NORMAL, 0, -1, PARAMS, &len, out), "predict batch");
	}
	LGBM_BoosterFree(b);
	free(x);
	free(out);
	return 0;
}

/* read_csv reads a header line and rows of cols numbers. */
static double *read_csv(const char *path, int cols, int64_t *rows) {
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	size_t cap = 1 << 16, n = 0;
	double *x = xmalloc(sizeof(double) * cap);
	char line[1 << 16];
	if (fgets(line, sizeof line, f) == NULL) {
		fprintf(stderr, "lgbref: %s: empty\n", path);
		exit(1);
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *p = line;
		for (int c = 0; c < cols; c++) {
			char *end;
			double v = strtod(p, &end); /* glibc's strtod rounds correctly and reads "nan" and "inf" */
			if (end == p || (*end != ',' && *end != '\n' && *end != '\0')) {
				fprintf(stderr, "lgbref: %s: row %zu: bad field %d\n", path, n / cols + 1, c);
				exit(1);
			}
			if (n == cap) {
				cap *= 2;
				x = realloc(x, sizeof(double) * cap);
			}
			x[n++] = v;
			p = end + 1;
		}
	}
	fclose(f);
	*rows = (int64_t)(n / cols);
	return x;
}

static FILE *create(const char *dir, const char *name) {
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f == NULL) {
		perror(path);
		exit(1);
	}
	return f;
}

static int golden_main(const char *model, const char *input, const char *dir) {
	int cols, trees;
	BoosterHandle b = load(model, &cols, &trees);
	int per_iter;
	check(LGBM_BoosterNumModelPerIteration(b, &per_iter), "models per iteration");
	if (per_iter != 1) {
		fprintf(stderr, "lgbref: golden writes one score per row; %s has %d per iteration\n", model, per_iter);
		return 1;
	}
	int64_t rows, len;
	double *x = read_csv(input, cols, &rows);
	double *prob = xmalloc(sizeof(double) * (size_t)rows);
	double *raw = xmalloc(sizeof(double) * (size_t)rows);
	double *leaf = xmalloc(sizeof(double) * (size_t)(rows * trees));
	check(LGBM_BoosterPredictForMat(b, x, C_API_DTYPE_FLOAT64, (int32_t)rows, cols, 1, C_API_PREDICT_NORMAL, 0, -1, PARAMS, &len, prob), "predict");
	check(LGBM_BoosterPredictForMat(b, x, C_API_DTYPE_FLOAT64, (int32_t)rows, cols, 1, C_API_PREDICT_RAW_SCORE, 0, -1, PARAMS, &len, raw), "predict raw");
	check(LGBM_BoosterPredictForMat(b, x, C_API_DTYPE_FLOAT64, (int32_t)rows, cols, 1, C_API_PREDICT_LEAF_INDEX, 0, -1, PARAMS, &len, leaf), "predict leaf");
	if (len != rows * trees) {
		fprintf(stderr, "lgbref: %lld leaf indices for %lld rows of %d trees\n", (long long)len, (long long)rows, trees);
		return 1;
	}
	FastConfigHandle fast;
	check(LGBM_BoosterPredictForMatSingleRowFastInit(b, C_API_PREDICT_NORMAL, 0, -1, C_API_DTYPE_FLOAT64, cols, PARAMS, &fast), "fast init");
	for (int64_t r = 0; r < rows; r++) {
		double one;
		check(LGBM_BoosterPredictForMatSingleRowFast(fast, x + r * cols, &len, &one), "predict one row");
		if (memcmp(&one, &prob[r], sizeof one) != 0) {
			fprintf(stderr, "lgbref: row %lld: single-row %.17g, batch %.17g\n", (long long)r, one, prob[r]);
			return 1;
		}
	}
	LGBM_FastConfigFree(fast);
	FILE *fp = create(dir, "expected.csv"), *fr = create(dir, "expected_raw.csv"), *fl = create(dir, "expected_leaf.csv");
	fprintf(fp, "prediction\n");
	fprintf(fr, "raw_score\n");
	for (int t = 0; t < trees; t++) {
		fprintf(fl, t ? ",tree_%d" : "tree_%d", t);
	}
	fprintf(fl, "\n");
	for (int64_t r = 0; r < rows; r++) {
		fprintf(fp, "%.17g\n", prob[r]);
		fprintf(fr, "%.17g\n", raw[r]);
		for (int t = 0; t < trees; t++) {
			fprintf(fl, t ? ",%.0f" : "%.0f", leaf[r * trees + t]);
		}
		fprintf(fl, "\n");
	}
	fclose(fp);
	fclose(fr);
	fclose(fl);
	fprintf(stderr, "lgbref: %lld rows, %d trees written to %s\n", (long long)rows, trees, dir);
	LGBM_BoosterFree(b);
	return 0;
}

int main(int argc, char **argv) {
	if (argc >= 3 && strcmp(argv[1], "time") == 0) {
		return time_main(argv[2], argc > 3 ? atoll(argv[3]) : 100000, argc > 4 ? atof(argv[4]) : 2.0);
	}
	if (argc == 4 && strcmp(argv[1], "once") == 0) {
		return once_main(argv[2], atoll(argv[3]));
	}
	if (argc == 5 && strcmp(argv[1], "golden") == 0) {
		return golden_main(argv[2], argv[3], argv[4]);
	}
	fprintf(stderr, "usage: lgbref time MODEL [ROWS [MIN_SECONDS]] | lgbref once MODEL ROWS | lgbref golden MODEL INPUT.csv OUTDIR\n");
	return 2;
}
