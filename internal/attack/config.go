package attack

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Attack types, ART's class names.
const (
	TypeSquareAttack = "SquareAttack"
	TypeHopSkipJump  = "HopSkipJump"
)

// Types lists the attacks Ferry implements.
var Types = []string{TypeSquareAttack, TypeHopSkipJump}

// ErrConfig marks a wrong attack configuration (type, key or value).
var ErrConfig = errors.New("attack config")

// Norm is the distance an attack bounds or minimises.
type Norm int

// The two norms ART's black-box attacks support.
const (
	NormInf Norm = iota
	NormL2
)

func (n Norm) String() string {
	if n == NormL2 {
		return "2"
	}
	return "inf"
}

// Config is one attack's configuration, decoded once from ART's config
// keys (ParseConfig) and read-only afterwards.
type Config struct {
	Type string
	Norm Norm
	// Eps bounds the perturbation in Norm. SquareAttack searches inside the
	// ball; HopSkipJump minimises the distance and, when Eps > 0, counts an
	// example beyond it as a failure (returning the input unchanged).
	Eps float64
	// MaxIter is the number of iterations (SquareAttack: steps per restart;
	// HopSkipJump: boundary walks).
	MaxIter int
	// NbClasses, when set, is checked against the predictor's outputs and
	// used to widen predicted class labels into one-hot scores.
	NbClasses int
	// BatchSize bounds the rows of one predictor call.
	BatchSize int
	// ClipMin and ClipMax bound every feature (ART's clip_values); ±Inf
	// when unbounded.
	ClipMin, ClipMax float64
	// ChannelsFirst reads a 3-D input as [C, H, W] instead of [H, W, C].
	ChannelsFirst bool
	// Seed makes the random search reproducible.
	Seed uint64
	// Verbose logs each instance's outcome at info level.
	Verbose bool

	// SquareAttack.
	PInit      float64
	NbRestarts int

	// HopSkipJump.
	MaxEval, InitEval, InitSize int
}

// keys lists every config key each type honours.
var keys = map[string][]string{
	TypeSquareAttack: {"nb_classes", "max_iter", "eps", "norm", "batch_size", "clip_min", "clip_max", "clip_values", "channels_first", "seed", "verbose", "p_init", "nb_restarts"},
	TypeHopSkipJump:  {"nb_classes", "max_iter", "eps", "norm", "batch_size", "clip_min", "clip_max", "clip_values", "channels_first", "seed", "verbose", "max_eval", "init_eval", "init_size", "targeted"},
}

// refused names ART keys Ferry does not honour, with the reason.
var refused = map[string]string{
	"adv_criterion":  "ART takes a Python callable; Ferry's criterion is fixed: the predicted class differs from the label",
	"loss":           "ART takes a Python callable; Ferry uses the margin loss (score of the label minus the best other score)",
	"targeted":       "targeted attacks are not implemented (only targeted: false)",
	"summary_writer": "no TensorBoard here",
}

// DefaultConfig is typ's configuration before any key is applied: ART's
// defaults, except SquareAttack's max_iter, which is KFServing's
// art-explainer default (1000) rather than ART's (100).
func DefaultConfig(typ string) Config {
	c := Config{Type: typ, ClipMin: math.Inf(-1), ClipMax: math.Inf(1), Seed: 1}
	switch typ {
	case TypeSquareAttack:
		c.Norm, c.Eps, c.MaxIter, c.BatchSize, c.PInit, c.NbRestarts = NormInf, 0.3, 1000, 128, 0.8, 1
	case TypeHopSkipJump:
		c.Norm, c.MaxIter, c.BatchSize, c.MaxEval, c.InitEval, c.InitSize = NormL2, 50, 64, 10000, 100, 100
	}
	return c
}

// ParseConfig applies ART's config keys (string values, as an
// InferenceService's explainer config or KServe's --key value arguments
// carry them) to typ's defaults. Keys Ferry does not know or does not
// honour are refused by name.
func ParseConfig(typ string, kv map[string]string) (Config, error) {
	known, ok := keys[typ]
	if !ok {
		return Config{}, fmt.Errorf("%w: type %q: want one of %s", ErrConfig, typ, strings.Join(Types, ", "))
	}
	c := DefaultConfig(typ)
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		v := strings.TrimSpace(kv[k])
		if k == "targeted" {
			if b, err := strconv.ParseBool(v); err == nil && !b && typ == TypeHopSkipJump {
				continue
			}
		}
		if why, ok := refused[k]; ok {
			return Config{}, fmt.Errorf("%w: %s: %s", ErrConfig, k, why)
		}
		if !slices.Contains(known, k) {
			return Config{}, fmt.Errorf("%w: unknown key %q for %s (known: %s)", ErrConfig, k, typ, strings.Join(known, ", "))
		}
		if err := c.set(k, v); err != nil {
			return Config{}, fmt.Errorf("%w: %s %q: %w", ErrConfig, k, v, err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func (c *Config) set(k, v string) error {
	var err error
	switch k {
	case "nb_classes":
		c.NbClasses, err = strconv.Atoi(v)
	case "max_iter":
		c.MaxIter, err = strconv.Atoi(v)
	case "batch_size":
		c.BatchSize, err = strconv.Atoi(v)
	case "nb_restarts":
		c.NbRestarts, err = strconv.Atoi(v)
	case "max_eval":
		c.MaxEval, err = strconv.Atoi(v)
	case "init_eval":
		c.InitEval, err = strconv.Atoi(v)
	case "init_size":
		c.InitSize, err = strconv.Atoi(v)
	case "eps":
		c.Eps, err = strconv.ParseFloat(v, 64)
	case "p_init":
		c.PInit, err = strconv.ParseFloat(v, 64)
	case "clip_min":
		c.ClipMin, err = strconv.ParseFloat(v, 64)
	case "clip_max":
		c.ClipMax, err = strconv.ParseFloat(v, 64)
	case "clip_values":
		lo, hi, ok := strings.Cut(strings.Trim(v, "()[] "), ",")
		if !ok {
			return errors.New("want min,max")
		}
		if c.ClipMin, err = strconv.ParseFloat(strings.TrimSpace(lo), 64); err == nil {
			c.ClipMax, err = strconv.ParseFloat(strings.TrimSpace(hi), 64)
		}
	case "channels_first":
		c.ChannelsFirst, err = strconv.ParseBool(v)
	case "verbose":
		c.Verbose, err = strconv.ParseBool(v)
	case "seed":
		c.Seed, err = strconv.ParseUint(v, 10, 64)
	case "norm":
		switch strings.ToLower(v) {
		case "inf", "np.inf", "linf", "infinity":
			c.Norm = NormInf
		case "2", "l2":
			c.Norm = NormL2
		default:
			return errors.New("want inf or 2")
		}
	}
	return err
}

// Validate checks c's ranges.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	switch {
	case !slices.Contains(Types, c.Type):
		return bad("type %q: want one of %s", c.Type, strings.Join(Types, ", "))
	case c.MaxIter < 1 && c.Type == TypeSquareAttack, c.MaxIter < 0:
		return bad("max_iter %d: want at least 1", c.MaxIter)
	case c.Eps < 0 || math.IsNaN(c.Eps) || math.IsInf(c.Eps, 0):
		return bad("eps %v: want a finite number ≥ 0", c.Eps)
	case c.Type == TypeSquareAttack && c.Eps == 0:
		return bad("eps 0: SquareAttack needs a positive radius")
	case c.NbClasses < 0 || c.NbClasses == 1:
		return bad("nb_classes %d: want 0 (from the predictor) or at least 2", c.NbClasses)
	case c.BatchSize < 1:
		return bad("batch_size %d: want at least 1", c.BatchSize)
	case !(c.ClipMin < c.ClipMax):
		return bad("clip values [%v, %v]: want min < max", c.ClipMin, c.ClipMax)
	case c.Type == TypeSquareAttack && !(c.PInit > 0 && c.PInit <= 1):
		return bad("p_init %v: want 0 < p_init ≤ 1", c.PInit)
	case c.Type == TypeSquareAttack && c.NbRestarts < 1:
		return bad("nb_restarts %d: want at least 1", c.NbRestarts)
	case c.Type == TypeHopSkipJump && (c.MaxEval < 1 || c.InitEval < 1 || c.InitEval > c.MaxEval || c.InitSize < 1):
		return bad("max_eval %d, init_eval %d, init_size %d: want 1 ≤ init_eval ≤ max_eval and init_size ≥ 1", c.MaxEval, c.InitEval, c.InitSize)
	}
	return nil
}

// Args renders typ and config as the arguments of `ferry attack`, after
// checking them, so that a control plane refuses a bad explainer block
// when it is applied rather than when the child starts.
func Args(typ string, config map[string]string) ([]string, error) {
	if _, err := ParseConfig(typ, config); err != nil {
		return nil, err
	}
	args := []string{typ}
	for _, k := range slices.Sorted(maps.Keys(config)) {
		args = append(args, "--"+k, config[k])
	}
	return args, nil
}
