// Package api owns Ferry's copy of the KServe resource model: the
// InferenceService (v1beta1) and TrainedModel (v1alpha1) kinds in both the
// serving.kserve.io and serving.kubeflow.org groups, their strict decoding from
// YAML or JSON, and the defaulting and validation KServe's admission webhooks
// perform.
//
// The types mirror KServe's field names and JSON tags so that the YAML users
// already give KServe decodes unchanged. They are written here rather than
// imported because k8s.io/api and KServe's own module are far heavier than the
// handful of structs Ferry needs.
//
// Where Ferry knowingly differs from KServe's webhooks: a missing resource
// request takes the user's limit rather than a fixed 2Gi that could exceed it;
// all problems are reported at once, sorted by field path, instead of the
// first; the logger URL is required (there is no cluster broker to default
// to); and decoding rejects unknown fields with their path, as kubectl's
// strict field validation does.
//
// The usual sequence is Decode, then Default, then Validate, which is the order
// in which a Kubernetes API server runs mutating and validating webhooks:
//
//	objs, err := api.Decode(data)
//	for _, o := range objs {
//		o.Default()
//		if err := o.Validate(); err != nil { ... }
//	}
//
// Load does all three for a whole YAML stream.
package api
