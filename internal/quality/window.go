package quality

import (
	"slices"
	"strconv"
)

// sample is one labelled row in a window.
type sample struct {
	kind  RowKind
	pred  string    // predicted label (KindLabel, KindProbs)
	value float64   // predicted value (KindValue)
	probs []float64 // KindProbs
	truth Truth
	rec   int64 // journal offset of the joined record it came from
}

// window is a ring of the last cap labelled rows of one model revision.
type window struct {
	model, revision string
	ring            []sample
	next            int
	full            bool
}

func newWindow(model, revision string, size int) *window {
	return &window{model: model, revision: revision, ring: make([]sample, size)}
}

func (w *window) push(s sample) {
	w.ring[w.next] = s
	w.next++
	if w.next == len(w.ring) {
		w.next, w.full = 0, true
	}
}

// each calls fn for the samples held, oldest first.
func (w *window) each(fn func(*sample)) {
	if w.full {
		for i := w.next; i < len(w.ring); i++ {
			fn(&w.ring[i])
		}
	}
	for i := range w.next {
		fn(&w.ring[i])
	}
}

func (w *window) len() int {
	if w.full {
		return len(w.ring)
	}
	return w.next
}

// Snapshot is the quality of one model revision now.
type Snapshot struct {
	Model          string          `json:"model"`
	Revision       string          `json:"revision"`
	WindowSize     int             `json:"window_size"`
	Labelled       int             `json:"labelled"`
	Classification *Classification `json:"classification,omitempty"`
	Regression     *Regression     `json:"regression,omitempty"`
}

// snapshot computes the window's metrics.
func (w *window) snapshot() Snapshot {
	s := Snapshot{Model: w.model, Revision: w.revision, WindowSize: len(w.ring), Labelled: w.len()}
	var (
		pred, truth   []string
		rp, rt        []float64
		probs         [][]float64
		probTruth     []int
		lastK, probsN int
	)
	w.each(func(x *sample) {
		if x.kind == KindProbs {
			lastK = len(x.probs)
		}
	})
	w.each(func(x *sample) {
		switch x.kind {
		case KindValue:
			rp, rt = append(rp, x.value), append(rt, x.truth.Value)
		case KindLabel, KindProbs:
			pred, truth = append(pred, x.pred), append(truth, x.truth.Label)
			if x.kind == KindProbs && len(x.probs) == lastK {
				t, _ := strconv.Atoi(x.truth.Label)
				probs, probTruth = append(probs, x.probs), append(probTruth, t)
				probsN++
			}
		}
	})
	s.Classification = classify(pred, truth)
	if s.Classification != nil && probsN > 0 && lastK >= 2 {
		s.Classification.ProbSamples = probsN
		ll := logLoss(probTruth, probs)
		s.Classification.LogLoss = &ll
		if auc, ok := rocAUC(probTruth, probs); ok {
			s.Classification.ROCAUC = &auc
		}
	}
	s.Regression = regress(rp, rt)
	return s
}

// argmax is the index of the largest probability (the first on ties).
func argmax(p []float64) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// refs appends the journal offsets the window's samples come from.
func (w *window) refs(out []int64) []int64 {
	w.each(func(x *sample) { out = append(out, x.rec) })
	return slices.Compact(out)
}
