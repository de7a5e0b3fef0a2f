// Package operator runs Ferry's InferenceServices on a Kubernetes cluster:
// the CRDs generated from internal/api's types, and a controller-runtime
// manager whose reconciler turns each InferenceService into a Deployment and
// a Service per predictor revision (KServe's raw deployment mode) and
// reports status from what the cluster says about them.
//
// It is the Kubernetes runner beside `ferry up`'s local one: the objects
// are read with the same api decoding, defaulting and validation, and the
// traffic split is controlplane's planner, not a copy of it.
package operator
