package rollout

import (
	"encoding/json"
	"fmt"
	"time"
)

// State is a rollout's progress, kept as JSON in the rollout-state
// annotation so that a restart resumes it.
type State struct {
	// Revision is the canary revision this state belongs to; a newer
	// latest revision starts a new rollout.
	Revision string `json:"revision"`
	// Stable is the rolled-out revision the canary is measured against.
	Stable string `json:"stable,omitempty"`
	// Step indexes Policy.Steps; Percent is its canaryTrafficPercent.
	Step        int       `json:"step"`
	Percent     int       `json:"percent"`
	StepStarted time.Time `json:"stepStarted"`
	Phase       string    `json:"phase"`
	// The last decision that changed the rollout, and its numbers.
	LastAction Action   `json:"lastAction,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Canary     *Metrics `json:"canary,omitempty"`
	StableM    *Metrics `json:"stableMetrics,omitempty"`
	// The revisions' accuracy at that decision, with an accuracy objective.
	CanaryQuality *Quality  `json:"canaryQuality,omitempty"`
	StableQuality *Quality  `json:"stableQuality,omitempty"`
	Updated       time.Time `json:"updated"`
}

// ReadState returns the state recorded in annotations, if any.
func ReadState(ann map[string]string) (State, bool, error) {
	v, ok := ann[AnnotationState]
	if !ok {
		return State{}, false, nil
	}
	var s State
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return State{}, false, fmt.Errorf("annotation %s: %w", AnnotationState, err)
	}
	return s, true, nil
}

func (s State) encode() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("encode rollout state: %v", err)) // plain fields always encode
	}
	return string(b)
}
