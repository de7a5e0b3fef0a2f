// Package operator runs Ferry's InferenceServices and TrainedModels on a
// Kubernetes cluster in KServe's raw deployment mode: the CRDs generated
// from internal/api's types (serving.kserve.io and KFServing's
// serving.kubeflow.org), and a controller-runtime manager whose reconcilers
// turn each InferenceService into a Deployment per component revision
// (predictor, transformer, explainer), a Service per component, HPAs, and
// an Ingress or Gateway API HTTPRoutes, each TrainedModel into an entry of
// its parent's model-config ConfigMap, and report status from what the
// cluster says about them.
//
// It is the Kubernetes runner beside `ferry up`'s local one: the objects
// are read with the same api decoding, defaulting and validation, and what
// to run, keep, route and report is internal/plan's (the planner `ferry up`
// uses), not a copy of it. This package only carries plan's answers out.
package operator
