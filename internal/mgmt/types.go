package mgmt

import (
	"encoding/json"
	"time"
)

// Prefix is the path under which every management API route lives.
const Prefix = "/api/v1"

// Kind is an object collection of the API, as it appears in paths.
type Kind string

// The collections the API serves.
const (
	InferenceServices Kind = "inferenceservices"
	TrainedModels     Kind = "trainedmodels"
	InferenceGraphs   Kind = "inferencegraphs"
)

// Singular is the kind's lower-case singular name, as messages use it.
func (k Kind) Singular() string {
	switch k {
	case InferenceServices:
		return "inferenceservice"
	case TrainedModels:
		return "trainedmodel"
	case InferenceGraphs:
		return "inferencegraph"
	}
	return string(k)
}

// ApplyResult says what apply did to one object
// (POST /api/v1/apply answers a JSON array of them).
type ApplyResult struct {
	Kind      string `json:"kind"` // InferenceService, TrainedModel or InferenceGraph
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Action    string `json:"action"` // created, configured, unchanged
}

// List is the envelope of every list answer.
type List[T any] struct {
	Items []T `json:"items"`
}

// Revision is one immutable version of a component's spec.
type Revision struct {
	Name      string          `json:"name"`
	Component string          `json:"component"`
	Number    int             `json:"number"`
	Hash      string          `json:"hash"`
	Spec      json.RawMessage `json:"spec,omitempty"`
	Created   time.Time       `json:"created"`
}

// Event is a notable change on a service, shown by `ferry describe`.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"` // Normal or Warning
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
}

// Replica is one supervised process of a revision.
type Replica struct {
	Name     string    `json:"name"`
	Phase    string    `json:"phase"`
	PID      int       `json:"pid"`
	Restarts int       `json:"restarts"`
	LastExit string    `json:"lastExit,omitempty"`
	Since    time.Time `json:"since"`
	HTTPPort int       `json:"httpPort"`
	GRPCPort int       `json:"grpcPort"`
	// InProcess: it runs inside ferry up's process (--in-process-predictors).
	InProcess bool `json:"inProcess,omitempty"`
}

// Replicas is a service's running replicas by revision, with the
// autoscaler's desired count and panic mode per revision.
type Replicas struct {
	Revisions map[string][]Replica `json:"revisions"`
	Desired   map[string]int       `json:"desired"`
	Panic     map[string]bool      `json:"panic"`
}

// Logs is the recent output of a component's replicas, by replica name.
type Logs struct {
	Replicas map[string][]string `json:"replicas"`
}

// Models is the model repository of a service's predictor replicas (the
// V2 repository extension's index of each), by replica name.
type Models struct {
	Replicas map[string]ModelIndex `json:"replicas"`
}

// ModelIndex is one replica's repository index, or why it could not be
// read.
type ModelIndex struct {
	Revision string            `json:"revision"`
	Models   []RepositoryModel `json:"models"`
	Error    string            `json:"error,omitempty"`
}

// RepositoryModel is one model of a repository index.
type RepositoryModel struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	State   string `json:"state"`
	Reason  string `json:"reason,omitempty"`
}

// Deleted answers a delete; it names the object as namespace/name.
type Deleted struct {
	Deleted string `json:"deleted"`
}

// ErrorBody is the body of every answer that is not a success.
type ErrorBody struct {
	Error string `json:"error"`
}
