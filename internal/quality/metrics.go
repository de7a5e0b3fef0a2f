package quality

import (
	"math"
	"slices"
	"sort"
	"strconv"
)

// Classification holds classification metrics over a window, computed as
// sklearn.metrics does: labels are the sorted union of true and predicted
// labels (numerically when all are numbers); a precision, recall or F1
// whose denominator is zero is 0 (zero_division=0); macro averages are the
// unweighted means over those labels.
type Classification struct {
	Samples        int       `json:"samples"`
	Accuracy       float64   `json:"accuracy"`
	PrecisionMacro float64   `json:"precision_macro"`
	RecallMacro    float64   `json:"recall_macro"`
	F1Macro        float64   `json:"f1_macro"`
	Labels         []string  `json:"labels"`
	PerClass       []Class   `json:"per_class"`
	Confusion      [][]int64 `json:"confusion_matrix"`
	LogLoss        *float64  `json:"log_loss,omitempty"`
	ROCAUC         *float64  `json:"roc_auc,omitempty"`
	ProbSamples    int       `json:"probability_samples,omitempty"`
}

// Class is one label's row of the per-class report.
type Class struct {
	Label     string  `json:"label"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	Support   int64   `json:"support"`
}

// Regression holds regression metrics over a window. R2 is absent for
// fewer than two samples (sklearn returns NaN).
type Regression struct {
	Samples int      `json:"samples"`
	MAE     float64  `json:"mae"`
	RMSE    float64  `json:"rmse"`
	R2      *float64 `json:"r2,omitempty"`
}

// classify computes classification metrics of predicted vs true labels.
func classify(pred, truth []string) *Classification {
	n := len(truth)
	if n == 0 {
		return nil
	}
	labels := sortedLabels(pred, truth)
	idx := make(map[string]int, len(labels))
	for i, l := range labels {
		idx[l] = i
	}
	k := len(labels)
	cm := make([][]int64, k)
	for i := range cm {
		cm[i] = make([]int64, k)
	}
	for i := range n {
		cm[idx[truth[i]]][idx[pred[i]]]++
	}
	return fromConfusion(labels, cm)
}

// fromConfusion computes the classification metrics of a confusion matrix
// (rows: truth, columns: prediction, both over labels): every one of them
// is a function of the matrix alone, which is what lets the windows of
// several replicas be merged exactly (MergeClassification).
func fromConfusion(labels []string, cm [][]int64) *Classification {
	k := len(labels)
	var n, correct int64
	for i := range k {
		correct += cm[i][i]
		for j := range k {
			n += cm[i][j]
		}
	}
	if n == 0 {
		return nil
	}
	c := &Classification{Samples: int(n), Accuracy: float64(correct) / float64(n), Labels: labels, Confusion: cm}
	for i, l := range labels {
		var predSum, trueSum int64
		for j := range k {
			predSum += cm[j][i]
			trueSum += cm[i][j]
		}
		tp := cm[i][i]
		cl := Class{Label: l, Support: trueSum,
			Precision: ratio(float64(tp), float64(predSum)),
			Recall:    ratio(float64(tp), float64(trueSum)),
			F1:        ratio(2*float64(tp), float64(trueSum+predSum)),
		}
		c.PerClass = append(c.PerClass, cl)
		c.PrecisionMacro += cl.Precision
		c.RecallMacro += cl.Recall
		c.F1Macro += cl.F1
	}
	c.PrecisionMacro /= float64(k)
	c.RecallMacro /= float64(k)
	c.F1Macro /= float64(k)
	return c
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// sortedLabels is sklearn's unique_labels: the sorted union, numerically
// when every label is a number.
func sortedLabels(a, b []string) []string {
	set := make(map[string]struct{})
	for _, l := range a {
		set[l] = struct{}{}
	}
	for _, l := range b {
		set[l] = struct{}{}
	}
	out := make([]string, 0, len(set))
	numeric := true
	for l := range set {
		out = append(out, l)
		if _, err := strconv.ParseFloat(l, 64); err != nil {
			numeric = false
		}
	}
	if numeric {
		slices.SortFunc(out, func(x, y string) int {
			fx, _ := strconv.ParseFloat(x, 64)
			fy, _ := strconv.ParseFloat(y, 64)
			if fx < fy {
				return -1
			} else if fx > fy {
				return 1
			}
			return 0
		})
	} else {
		slices.Sort(out)
	}
	return out
}

// logLoss is sklearn's log_loss(y, p, labels=range(k)) (as of 1.2): the
// mean negative log probability of the true class, probabilities clipped to
// [eps, 1-eps] with eps the float64 machine epsilon, then each row scaled
// to sum to 1 (float32 model outputs rarely do exactly).
func logLoss(truth []int, probs [][]float64) float64 {
	const eps = 2.220446049250313e-16
	var sum float64
	for i, t := range truth {
		var rowSum float64
		for _, p := range probs[i] {
			rowSum += min(max(p, eps), 1-eps)
		}
		p := min(max(probs[i][t], eps), 1-eps) / rowSum
		sum -= math.Log(p)
	}
	return sum / float64(len(truth))
}

// rocAUC is sklearn's roc_auc_score: for two classes the AUC of column 1;
// for more, the one-vs-rest macro average, defined only when every class
// occurs in truth. ok is false where sklearn would refuse (a class absent).
func rocAUC(truth []int, probs [][]float64) (float64, bool) {
	k := len(probs[0])
	pos := make([]bool, len(truth))
	score := make([]float64, len(truth))
	if k == 2 {
		for i, t := range truth {
			pos[i], score[i] = t == 1, probs[i][1]
		}
		return binaryAUC(pos, score)
	}
	var sum float64
	for c := range k {
		for i, t := range truth {
			pos[i], score[i] = t == c, probs[i][c]
		}
		a, ok := binaryAUC(pos, score)
		if !ok {
			return 0, false
		}
		sum += a
	}
	return sum / float64(k), true
}

// binaryAUC is the area under the ROC curve by the trapezoidal rule over
// thresholds at each distinct score (ties move both rates at once).
func binaryAUC(pos []bool, score []float64) (float64, bool) {
	order := make([]int, len(score))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return score[order[a]] > score[order[b]] })
	var tp, fp, prevTP, prevFP, area float64
	for i := 0; i < len(order); {
		j := i
		for j < len(order) && score[order[j]] == score[order[i]] {
			if pos[order[j]] {
				tp++
			} else {
				fp++
			}
			j++
		}
		area += (fp - prevFP) * (tp + prevTP) / 2
		prevTP, prevFP = tp, fp
		i = j
	}
	if tp == 0 || fp == 0 {
		return 0, false
	}
	return area / (tp * fp), true
}

// regress computes MAE, RMSE and R² (sklearn's force_finite: a constant
// truth gives 1 when predicted exactly, else 0).
func regress(pred, truth []float64) *Regression {
	n := len(truth)
	if n == 0 {
		return nil
	}
	var absSum, sqSum, mean float64
	for i := range n {
		d := truth[i] - pred[i]
		absSum += math.Abs(d)
		sqSum += d * d
		mean += truth[i]
	}
	mean /= float64(n)
	r := &Regression{Samples: n, MAE: absSum / float64(n), RMSE: math.Sqrt(sqSum / float64(n))}
	if n >= 2 {
		var tot float64
		for _, t := range truth {
			tot += (t - mean) * (t - mean)
		}
		r2 := 0.0
		switch {
		case tot != 0:
			r2 = 1 - sqSum/tot
		case sqSum == 0:
			r2 = 1
		}
		r.R2 = &r2
	}
	return r
}
