package api

import (
	"errors"
	"strings"
	"time"
)

// API groups, versions and kinds Ferry accepts.
const (
	GroupKServe   = "serving.kserve.io"    // KServe ≥ 0.7
	GroupKubeflow = "serving.kubeflow.org" // KFServing ≤ 0.6

	VersionInferenceService = "v1beta1"
	VersionTrainedModel     = "v1alpha1"

	KindInferenceService = "InferenceService"
	KindTrainedModel     = "TrainedModel"
)

// ErrInvalid is wrapped by every decoding and validation error, so that a
// caller can map all of them to one "bad request" status.
var ErrInvalid = errors.New("invalid object")

// TypeMeta records which group and version an object was written in; the two
// groups carry the same schema, so converting between them is only a matter of
// rewriting APIVersion.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// Group returns the API group part of APIVersion.
func (t TypeMeta) Group() string {
	g, _, _ := strings.Cut(t.APIVersion, "/")
	return g
}

// Version returns the version part of APIVersion.
func (t TypeMeta) Version() string {
	_, v, _ := strings.Cut(t.APIVersion, "/")
	return v
}

// SetGroup rewrites APIVersion to another group, keeping the version: the
// whole of converting between serving.kserve.io and serving.kubeflow.org.
func (t *TypeMeta) SetGroup(group string) {
	t.APIVersion = group + "/" + t.Version()
}

// ObjectMeta is the subset of Kubernetes object metadata Ferry keeps.
type ObjectMeta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace,omitempty"`
	UID               string            `json:"uid,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	Generation        int64             `json:"generation,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	CreationTimestamp *time.Time        `json:"creationTimestamp,omitempty"`
}

// DefaultNamespace is the namespace given to objects that name none.
const DefaultNamespace = "default"

// Object is one decoded InferenceService or TrainedModel.
type Object interface {
	// Meta returns the object's metadata for reading or updating in place.
	Meta() *ObjectMeta
	// Type returns the apiVersion and kind the object was written with.
	Type() TypeMeta
	// Default fills in the values KServe's mutating webhook fills in. It is
	// idempotent and never fails; invalid input is left for Validate.
	Default()
	// Validate reports every problem KServe's validating webhook would
	// reject, as a *ValidationError, or nil.
	Validate() error
}

// Condition is one entry of a status's conditions, as Knative reports them.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Severity           string    `json:"severity,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime,omitzero"`
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
}

// Addressable is Knative's duck-typed address.
type Addressable struct {
	URL string `json:"url,omitempty"`
}
