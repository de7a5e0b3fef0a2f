// Package explain owns Ferry's built-in explainers behind KServe's
// :explain routes: it reads the explainer configuration (type, Alibi's
// config keys, training data), calls the model as a black box (in process
// or over V1 to a predictor), runs TreeSHAP, KernelSHAP or AnchorTabular
// (subpackages treeshap, kernelshap, anchor) and answers in Alibi's
// Explanation JSON.
package explain

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Errors the handler maps to HTTP statuses.
var (
	// ErrConfig: the explainer configuration is wrong (load time).
	ErrConfig = errors.New("explainer config")
	// ErrBadInput: the explain request is malformed (400).
	ErrBadInput = errors.New("invalid explain request")
	// ErrPredictor: the predictor failed during an explanation (502).
	ErrPredictor = errors.New("predictor failed")
)

// Explainer types, Alibi's names.
const (
	TypeTreeShap      = "TreeShap"
	TypeKernelShap    = "KernelShap"
	TypeAnchorTabular = "AnchorTabular"
	TypeAnchorText    = "AnchorText"
	// TypeLimeTabular is LIME on rows (lime's LimeTabularExplainer); not
	// an Alibi type: ferry serve and ferry explain run it.
	TypeLimeTabular = "LimeTabular"
	// TypeAnchorImages is Alibi's anchors over superpixels.
	TypeAnchorImages = "AnchorImages"
	// TypeLimeImages is AIX360's LIME on images (KServe's aix block).
	TypeLimeImages = "LimeImages"
)

// IsImage reports whether the type explains images (nested lists of
// pixels) rather than rows of numbers.
func IsImage(typ string) bool { return typ == TypeAnchorImages || typ == TypeLimeImages }

// IsText reports whether the type explains documents (strings) rather
// than rows of numbers.
func IsText(typ string) bool { return typ == TypeAnchorText }

// TextPredictor evaluates documents and returns each one's outputs.
type TextPredictor func(ctx context.Context, docs []string) ([][]float64, error)

// Predictor evaluates rows and returns each row's outputs (one or more
// numbers). It is the model as a black box.
type Predictor func(ctx context.Context, rows [][]float64) ([][]float64, error)

// Options is an explainer's configuration as given on the command line or
// in an InferenceService's explainer block.
type Options struct {
	Type   string
	Config map[string]string // Alibi config keys, string values
	Data   *Data             // training data; nil when none was given
}

// keys lists the config keys each type honours.
var keys = map[string][]string{
	TypeTreeShap:      {"interactions"},
	TypeKernelShap:    {"nsamples", "l1_reg", "batch_size", "seed"},
	TypeAnchorTabular: {"threshold", "delta", "tau", "batch_size", "coverage_samples", "beam_size", "stop_on_first", "max_anchor_size", "min_samples_start", "n_covered_ex", "seed"},
	TypeLimeTabular:   {"num_samples", "num_features", "kernel_width", "feature_selection", "sample_around_instance", "discretize_continuous", "top_labels", "batch_size", "seed"},
	TypeAnchorImages:  {"threshold", "delta", "tau", "batch_size", "coverage_samples", "beam_size", "stop_on_first", "max_anchor_size", "min_samples_start", "n_covered_ex", "seed", "p_sample", "segmentation_fn", "n_segments", "compactness", "kernel_size", "max_dist", "ratio", "sigma"},
	TypeLimeImages:    {"num_samples", "segmentation_algorithm", "top_labels", "min_weight", "positive_only", "num_features", "batch_size", "seed", "n_segments", "compactness", "kernel_size", "max_dist", "ratio", "sigma"},
	TypeAnchorText:    {"threshold", "delta", "tau", "batch_size", "coverage_samples", "beam_size", "stop_on_first", "max_anchor_size", "min_samples_start", "n_covered_ex", "seed", "use_unk", "sample_proba"},
}

// unsupported names Alibi keys Ferry refuses, with the reason.
var unsupported = map[string]string{
	"max_samples_start":    "Alibi's name is min_samples_start (KFServing passed max_samples_start and Alibi ignored it)",
	"binary_cache_size":    "Ferry keeps no sample cache",
	"cache_margin":         "Ferry keeps no sample cache",
	"verbose":              "use --log-level debug",
	"verbose_every":        "use --log-level debug",
	"feature_perturbation": "only the path-dependent TreeSHAP is implemented",
	"use_similarity_proba": "Ferry samples with UNK only (no word embeddings to draw similar words from)",
	"top_n":                "Ferry samples with UNK only (no word embeddings to draw similar words from)",
	"temperature":          "Ferry samples with UNK only (no word embeddings to draw similar words from)",
}

// Validate checks the type and refuses unknown config keys by name. It
// is the check ferry up's control plane, ferry serve and ferry explain
// share.
func (o Options) Validate() error {
	allowed, ok := keys[o.Type]
	if !ok {
		return fmt.Errorf("%w: type %q is not one of %s", ErrConfig, o.Type, strings.Join(slices.Sorted(maps.Keys(keys)), ", "))
	}
	for _, k := range slices.Sorted(maps.Keys(o.Config)) {
		if slices.Contains(allowed, k) {
			continue
		}
		if why, ok := unsupported[k]; ok {
			return fmt.Errorf("%w: %s does not take %q: %s", ErrConfig, o.Type, k, why)
		}
		return fmt.Errorf("%w: %s does not take %q; it takes: %s", ErrConfig, o.Type, k, strings.Join(allowed, ", "))
	}
	return nil
}

// NeedsData reports whether the type reads training data (a background
// or training sample) from --explainer-data / storageUri. Text and image
// explainers perturb the instance itself.
func NeedsData(typ string) bool {
	return typ == TypeKernelShap || typ == TypeAnchorTabular || typ == TypeLimeTabular
}

// ParseConfig turns "key=value" pairs into a config map.
func ParseConfig(pairs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %q is not key=value", ErrConfig, p)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// config reads typed values out of a config map, remembering the first
// error with the key's name.
type config struct {
	m   map[string]string
	err error
}

func (c *config) float(key string, dst *float64) {
	if v, ok := c.m[key]; ok && c.err == nil {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			c.err = fmt.Errorf("%w: %s=%q is not a number", ErrConfig, key, v)
		}
		*dst = f
	}
}

func (c *config) int(key string, dst *int) {
	if v, ok := c.m[key]; ok && c.err == nil {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.err = fmt.Errorf("%w: %s=%q is not an integer", ErrConfig, key, v)
		}
		*dst = n
	}
}

func (c *config) uint(key string, dst *uint64) {
	if v, ok := c.m[key]; ok && c.err == nil {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			c.err = fmt.Errorf("%w: %s=%q is not a non-negative integer", ErrConfig, key, v)
		}
		*dst = n
	}
}

func (c *config) bool(key string, dst *bool) {
	if v, ok := c.m[key]; ok && c.err == nil {
		b, err := strconv.ParseBool(v)
		if err != nil {
			c.err = fmt.Errorf("%w: %s=%q is not true or false", ErrConfig, key, v)
		}
		*dst = b
	}
}

func (c *config) string(key string, dst *string) {
	if v, ok := c.m[key]; ok && c.err == nil {
		*dst = v
	}
}
