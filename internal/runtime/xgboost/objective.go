package xgboost

import (
	"fmt"
	"math"

	"github.com/ferryserve/ferry/internal/runtime"
)

// linkKind is how an objective maps margins to predictions.
type linkKind uint8

const (
	linkIdentity linkKind = iota // margin as is
	linkSigmoid                  // 1 / (1 + exp(-m))
	linkExp                      // exp(m)
	linkHinge                    // m > 0 ? 1 : 0
	linkSoftmax                  // softmax over the groups of a row
	linkArgmax                   // index of the largest margin of a row, as float
)

// objective is what prediction needs from an XGBoost objective: how
// base_score (stored in response space) becomes a margin, and how margins
// become predictions.
type objective struct {
	name string
	// baseLog / baseLogit: base_score is turned into a margin with log or
	// logit (XGBoost's ProbToMargin); otherwise it is used as is.
	baseLog, baseLogit bool
	link               linkKind
}

// objectives lists the objectives Ferry evaluates, with the same rules as
// XGBoost 1.7's ProbToMargin and PredTransform.
var objectives = map[string]objective{
	"reg:squarederror":     {link: linkIdentity},
	"reg:linear":           {link: linkIdentity},
	"reg:squaredlogerror":  {link: linkIdentity},
	"reg:pseudohubererror": {link: linkIdentity},
	"reg:absoluteerror":    {link: linkIdentity},
	"reg:logistic":         {baseLogit: true, link: linkSigmoid},
	"binary:logistic":      {baseLogit: true, link: linkSigmoid},
	"binary:logitraw":      {link: linkIdentity}, // base_score is a margin here
	"binary:hinge":         {link: linkHinge},
	"count:poisson":        {baseLog: true, link: linkExp},
	"reg:gamma":            {baseLog: true, link: linkExp},
	"reg:tweedie":          {baseLog: true, link: linkExp},
	"survival:cox":         {baseLog: true, link: linkExp},
	"survival:aft":         {baseLog: true, link: linkExp},
	"reg:quantileerror":    {link: linkIdentity},
	"multi:softprob":       {link: linkSoftmax},
	"multi:softmax":        {link: linkArgmax},
	"rank:pairwise":        {link: linkIdentity},
	"rank:ndcg":            {link: linkIdentity},
	"rank:map":             {link: linkIdentity},
}

func lookupObjective(name string) (objective, error) {
	o, ok := objectives[name]
	if !ok {
		return objective{}, fmt.Errorf("%w: xgboost objective %q", runtime.ErrUnsupported, name)
	}
	o.name = name
	return o, nil
}

// baseMargin turns a base_score into the margin every row starts from.
func (o objective) baseMargin(score float32) (float32, error) {
	switch {
	case o.baseLogit:
		if !(score > 0 && score < 1) {
			return 0, fmt.Errorf("%w: base_score %v must be in (0, 1) for %s", runtime.ErrCorruptModel, score, o.name)
		}
		return float32(-math.Log(float64(1/score - 1))), nil
	case o.baseLog:
		if !(score > 0) {
			return 0, fmt.Errorf("%w: base_score %v must be positive for %s", runtime.ErrCorruptModel, score, o.name)
		}
		return float32(math.Log(float64(score))), nil
	}
	return score, nil
}

// outputsPerRow is how many predictions one row gets for ngroup margins.
func (o objective) outputsPerRow(ngroup int) int {
	if o.link == linkArgmax {
		return 1
	}
	return ngroup
}

// transform writes the predictions for rows of margins (ngroup per row) to
// out, with float32 arithmetic as XGBoost does.
func (o objective) transform(margin []float32, ngroup int, out []float32) {
	switch o.link {
	case linkIdentity:
		copy(out, margin)
	case linkSigmoid:
		for i, m := range margin {
			out[i] = float32(1 / (1 + math.Exp(-float64(m))))
		}
	case linkExp:
		for i, m := range margin {
			out[i] = float32(math.Exp(float64(m)))
		}
	case linkHinge:
		for i, m := range margin {
			out[i] = 0
			if m > 0 {
				out[i] = 1
			}
		}
	case linkSoftmax:
		for r := 0; r+ngroup <= len(margin); r += ngroup {
			softmax(margin[r:r+ngroup], out[r:r+ngroup])
		}
	case linkArgmax:
		for r := 0; r*ngroup < len(margin); r++ {
			row := margin[r*ngroup : (r+1)*ngroup]
			best := 0
			for j, m := range row {
				if m > row[best] {
					best = j
				}
			}
			out[r] = float32(best)
		}
	}
}

// softmax follows XGBoost's common::Softmax: exponentials in float32 after
// subtracting the maximum, summed in float64.
func softmax(m, out []float32) {
	wmax := m[0]
	for _, v := range m[1:] {
		wmax = max(wmax, v)
	}
	var sum float64
	for i, v := range m {
		e := float32(math.Exp(float64(v - wmax)))
		out[i] = e
		sum += float64(e)
	}
	s := float32(sum)
	for i := range out {
		out[i] /= s
	}
}
