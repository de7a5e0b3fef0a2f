package fairness

import "fmt"

// DatasetMetrics are AIF360's BinaryLabelDatasetMetric values for one set
// of labels (a model's outputs, in the bias detector). Counts are float,
// as AIF360's are (sums of instance weights, all 1 here). Ratios with a
// zero denominator are NaN or ±Inf, as in AIF360.
type DatasetMetrics struct {
	NumInstances, NumPositives, NumNegatives float64
	// BaseRate is P(Y = favorable) over all instances.
	BaseRate float64
	// BaseRatePrivileged and BaseRateUnprivileged condition it on a group.
	BaseRatePrivileged, BaseRateUnprivileged float64
	// StatisticalParityDifference is unprivileged minus privileged base rate.
	StatisticalParityDifference float64
	// DisparateImpact is unprivileged over privileged base rate.
	DisparateImpact float64
	// Consistency is Zemel et al.'s individual fairness over all instances.
	Consistency float64
	// GroupInstances counts privileged and unprivileged instances.
	PrivilegedInstances, UnprivilegedInstances float64
}

// ClassificationMetrics are AIF360's ClassificationMetric values comparing
// predictions with true labels. Rates are conditioned on the true label.
type ClassificationMetrics struct {
	// EqualOpportunityDifference is TPR(unprivileged) - TPR(privileged).
	EqualOpportunityDifference float64
	// AverageOddsDifference is the mean of the FPR and TPR differences
	// (unprivileged minus privileged).
	AverageOddsDifference float64
	// Accuracy overall and per group: (TP+TN)/(P+N), 0 for no instances.
	Accuracy, AccuracyPrivileged, AccuracyUnprivileged float64
	// True and false positive rates per group.
	TPRPrivileged, TPRUnprivileged, FPRPrivileged, FPRUnprivileged float64
}

type counts struct{ n, pos, neg float64 }

func (c counts) baseRate() float64 { return c.pos / c.n }

// Dataset computes the dataset metrics of rows labelled by labels.
func (c *Config) Dataset(rows [][]float64, labels []float64) (DatasetMetrics, error) {
	if len(rows) == 0 {
		return DatasetMetrics{}, fmt.Errorf("%w: no instances", ErrBadInput)
	}
	if len(labels) != len(rows) {
		return DatasetMetrics{}, fmt.Errorf("%w: %d outputs for %d instances", ErrBadInput, len(labels), len(rows))
	}
	m, err := c.groupsOf(rows)
	if err != nil {
		return DatasetMetrics{}, err
	}
	if err := c.checkLabels("outputs", labels); err != nil {
		return DatasetMetrics{}, err
	}
	var all, priv, unpriv counts
	for i, y := range labels {
		add := func(k *counts) {
			k.n++
			if y == c.Favorable {
				k.pos++
			} else {
				k.neg++
			}
		}
		add(&all)
		switch m[i] {
		case privileged:
			add(&priv)
		case unprivileged:
			add(&unpriv)
		}
	}
	out := DatasetMetrics{
		NumInstances: all.n, NumPositives: all.pos, NumNegatives: all.neg,
		BaseRate:           all.baseRate(),
		BaseRatePrivileged: priv.baseRate(), BaseRateUnprivileged: unpriv.baseRate(),
		PrivilegedInstances: priv.n, UnprivilegedInstances: unpriv.n,
		Consistency: Consistency(rows, labels, c.Neighbors),
	}
	out.StatisticalParityDifference = out.BaseRateUnprivileged - out.BaseRatePrivileged
	out.DisparateImpact = out.BaseRateUnprivileged / out.BaseRatePrivileged
	return out, nil
}

type confusion struct{ tp, fp, tn, fn float64 }

func (k confusion) tpr() float64 { return k.tp / (k.tp + k.fn) }
func (k confusion) fpr() float64 { return k.fp / (k.fp + k.tn) }
func (k confusion) accuracy() float64 {
	n := k.tp + k.fp + k.tn + k.fn
	if n == 0 {
		return 0 // AIF360 reports 0, not NaN, for an empty group.
	}
	return (k.tp + k.tn) / n
}

// Classification compares predicted with true labels per group.
func (c *Config) Classification(rows [][]float64, truth, predicted []float64) (ClassificationMetrics, error) {
	if len(truth) != len(rows) || len(predicted) != len(rows) {
		return ClassificationMetrics{}, fmt.Errorf("%w: %d labels and %d outputs for %d instances", ErrBadInput, len(truth), len(predicted), len(rows))
	}
	m, err := c.groupsOf(rows)
	if err != nil {
		return ClassificationMetrics{}, err
	}
	if err := c.checkLabels("labels", truth); err != nil {
		return ClassificationMetrics{}, err
	}
	if err := c.checkLabels("outputs", predicted); err != nil {
		return ClassificationMetrics{}, err
	}
	var all, priv, unpriv confusion
	for i := range truth {
		t, p := truth[i] == c.Favorable, predicted[i] == c.Favorable
		add := func(k *confusion) {
			switch {
			case t && p:
				k.tp++
			case t:
				k.fn++
			case p:
				k.fp++
			default:
				k.tn++
			}
		}
		add(&all)
		switch m[i] {
		case privileged:
			add(&priv)
		case unprivileged:
			add(&unpriv)
		}
	}
	out := ClassificationMetrics{
		Accuracy: all.accuracy(), AccuracyPrivileged: priv.accuracy(), AccuracyUnprivileged: unpriv.accuracy(),
		TPRPrivileged: priv.tpr(), TPRUnprivileged: unpriv.tpr(),
		FPRPrivileged: priv.fpr(), FPRUnprivileged: unpriv.fpr(),
	}
	out.EqualOpportunityDifference = out.TPRUnprivileged - out.TPRPrivileged
	out.AverageOddsDifference = 0.5 * ((out.FPRUnprivileged - out.FPRPrivileged) + (out.TPRUnprivileged - out.TPRPrivileged))
	return out, nil
}
