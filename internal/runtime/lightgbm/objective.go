package lightgbm

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ferryserve/ferry/internal/runtime"
)

type objKind uint8

const (
	objIdentity      objKind = iota // regression family, ranking, custom
	objSqrt                         // regression with reg_sqrt: sign(x)·x²
	objExp                          // poisson, gamma, tweedie
	objBinary                       // sigmoid with the model's sigmoid factor
	objMulticlass                   // softmax over the classes
	objMulticlassOVA                // per-class sigmoid
	objXentropy                     // cross_entropy: logistic
	objXentLambda                   // cross_entropy_lambda: log(1+exp(x))
)

// objective is the transform from raw scores to the default output, read
// from the model's "objective=" line (e.g. "binary sigmoid:1").
type objective struct {
	name    string
	kind    objKind
	sigmoid float64
}

// parseObjective maps LightGBM's objective names (and their aliases) to
// output transforms. No objective line means a custom objective: raw
// scores are the output.
func parseObjective(line string) (objective, error) {
	words := strings.Fields(line)
	if len(words) == 0 || words[0] == "none" || words[0] == "null" || words[0] == "na" {
		return objective{name: "custom"}, nil
	}
	o := objective{name: words[0], sigmoid: 1}
	sqrt := false
	for _, w := range words[1:] {
		k, v, _ := strings.Cut(w, ":")
		switch k {
		case "sqrt":
			sqrt = true
		case "sigmoid":
			s, err := strconv.ParseFloat(v, 64)
			if err != nil || !(s > 0) || math.IsInf(s, 0) {
				return o, corrupt("objective %q: bad sigmoid %q", o.name, v)
			}
			o.sigmoid = s
		}
	}
	switch o.name {
	case "regression", "regression_l2", "l2", "mean_squared_error", "mse", "l2_root", "root_mean_squared_error", "rmse",
		"regression_l1", "l1", "mean_absolute_error", "mae",
		"huber", "fair", "quantile", "mape", "mean_absolute_percentage_error":
		o.kind = objIdentity
		if sqrt {
			o.kind = objSqrt
		}
	case "poisson", "gamma", "tweedie":
		o.kind = objExp
	case "binary":
		o.kind = objBinary
	case "multiclass", "softmax":
		o.kind = objMulticlass
	case "multiclassova", "multiclass_ova", "ova", "ovr":
		o.kind = objMulticlassOVA
	case "cross_entropy", "xentropy":
		o.kind = objXentropy
	case "cross_entropy_lambda", "xentlambda":
		o.kind = objXentLambda
	case "lambdarank", "rank_xendcg", "xendcg", "xe_ndcg", "xe_ndcg_mart", "xendcg_mart", "custom":
		o.kind = objIdentity
	default:
		return o, fmt.Errorf("%w: objective %q", runtime.ErrUnsupported, o.name)
	}
	return o, nil
}

// transform turns one row's raw scores into outputs, in place.
func (o objective) transform(s []float64) {
	switch o.kind {
	case objSqrt:
		for i, x := range s {
			s[i] = math.Copysign(x*x, x)
		}
	case objExp:
		for i, x := range s {
			s[i] = math.Exp(x)
		}
	case objBinary, objMulticlassOVA:
		for i, x := range s {
			s[i] = 1 / (1 + math.Exp(-o.sigmoid*x))
		}
	case objXentropy:
		for i, x := range s {
			s[i] = 1 / (1 + math.Exp(-x))
		}
	case objXentLambda:
		for i, x := range s {
			s[i] = math.Log1p(math.Exp(x))
		}
	case objMulticlass:
		m := math.Inf(-1)
		for _, x := range s {
			m = max(m, x)
		}
		sum := 0.0
		for i, x := range s {
			s[i] = math.Exp(x - m)
			sum += s[i]
		}
		for i := range s {
			s[i] /= sum
		}
	}
}
