// Package fairness computes AIF360's group-fairness metrics for a binary
// label: BinaryLabelDatasetMetric's base rate, counts, statistical parity
// difference, disparate impact and k-NN consistency over a model's outputs,
// and, where true labels are known, ClassificationMetric's equal opportunity
// difference, average odds difference and accuracy per group. Groups are
// defined by the values of protected attributes named in the configuration,
// as AIF360's privileged_groups / unprivileged_groups lists of dicts are.
//
// It also serves these metrics as KServe's AIF bias detector does (see
// Handler) and keeps them per InferenceService over windows of logged
// traffic (see Window).
package fairness

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrBadInput is wrapped by every error about the data a metric is asked
// to describe (as opposed to the configuration).
var ErrBadInput = errors.New("fairness: bad input")

// DefaultNeighbors is AIF360's n_neighbors for consistency.
const DefaultNeighbors = 5

// Group is one AIF360 group dict: an instance belongs to it when every named
// attribute has the given value.
type Group map[string]float64

// Config says which columns are features, which label is favourable, and
// which instances are privileged and unprivileged. An instance belongs to
// Privileged when it matches any of its groups (AIF360's list of dicts);
// the same for Unprivileged. Config is read-only once validated.
type Config struct {
	// Features names the columns of each instance, in order.
	Features []string
	// Favorable and Unfavorable are the two label values.
	Favorable, Unfavorable float64
	// Privileged and Unprivileged groups; their attributes must be Features.
	Privileged, Unprivileged []Group
	// Neighbors for consistency (DefaultNeighbors when 0).
	Neighbors int
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if len(c.Features) == 0 {
		return errors.New("fairness: no feature names")
	}
	seen := map[string]bool{}
	for _, f := range c.Features {
		if f == "" || seen[f] {
			return fmt.Errorf("fairness: feature name %q is empty or repeated", f)
		}
		seen[f] = true
	}
	if c.Favorable == c.Unfavorable || math.IsNaN(c.Favorable) || math.IsNaN(c.Unfavorable) {
		return fmt.Errorf("fairness: favorable label %v and unfavorable label %v must be two different numbers", c.Favorable, c.Unfavorable)
	}
	for _, gs := range []struct {
		name   string
		groups []Group
	}{{"privileged", c.Privileged}, {"unprivileged", c.Unprivileged}} {
		if len(gs.groups) == 0 {
			return fmt.Errorf("fairness: no %s groups", gs.name)
		}
		for _, g := range gs.groups {
			if len(g) == 0 {
				return fmt.Errorf("fairness: an empty %s group matches every instance", gs.name)
			}
			for a := range g {
				if !seen[a] {
					return fmt.Errorf("fairness: %s group attribute %q is not a feature name (%v)", gs.name, a, c.Features)
				}
			}
		}
	}
	if c.Neighbors == 0 {
		c.Neighbors = DefaultNeighbors
	}
	if c.Neighbors < 1 {
		return fmt.Errorf("fairness: neighbors %d, want at least 1", c.Neighbors)
	}
	return nil
}

// ProtectedAttributes returns the attributes the groups name, sorted.
func (c *Config) ProtectedAttributes() []string {
	set := map[string]bool{}
	for _, g := range slices.Concat(c.Privileged, c.Unprivileged) {
		for a := range g {
			set[a] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// membership is each instance's group: +1 privileged, -1 unprivileged, 0
// neither.
type membership []int8

const (
	privileged   = 1
	unprivileged = -1
)

// groupsOf resolves every instance's group. As AIF360, an instance in both
// is an error.
func (c *Config) groupsOf(rows [][]float64) (membership, error) {
	col := make(map[string]int, len(c.Features))
	for i, f := range c.Features {
		col[f] = i
	}
	matches := func(row []float64, gs []Group) bool {
		for _, g := range gs {
			all := true
			for a, v := range g {
				if row[col[a]] != v {
					all = false
					break
				}
			}
			if all {
				return true
			}
		}
		return false
	}
	m := make(membership, len(rows))
	for i, r := range rows {
		if len(r) != len(c.Features) {
			return nil, fmt.Errorf("%w: instance %d has %d values, want %d (one per feature name)", ErrBadInput, i, len(r), len(c.Features))
		}
		p, u := matches(r, c.Privileged), matches(r, c.Unprivileged)
		switch {
		case p && u:
			return nil, fmt.Errorf("%w: instance %d is in both the privileged and the unprivileged groups", ErrBadInput, i)
		case p:
			m[i] = privileged
		case u:
			m[i] = unprivileged
		}
	}
	return m, nil
}

// checkLabels reports the first value that is neither label.
func (c *Config) checkLabels(field string, ys []float64) error {
	for i, y := range ys {
		if y != c.Favorable && y != c.Unfavorable {
			return fmt.Errorf("%w: %s[%d] is %v, want the favorable label %v or the unfavorable label %v", ErrBadInput, field, i, y, c.Favorable, c.Unfavorable)
		}
	}
	return nil
}
