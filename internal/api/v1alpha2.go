package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// VersionV1alpha2 is the InferenceService version KFServing ≤ 0.5 still
// served beside v1beta1, converting it through a webhook.
const VersionV1alpha2 = "v1alpha2"

// Annotations Ferry sets on an InferenceService converted from v1alpha2, so
// that the stored v1beta1 object can be shown in the version it was applied
// in (ToV1alpha2).
const (
	// AnnotationConvertedFrom holds the apiVersion the object was applied in.
	AnnotationConvertedFrom = "ferryserve.github.io/converted-from"
	// AnnotationV1alpha2Default holds the JSON of the v1alpha2 default
	// endpoint when a canary endpoint was given: the v1beta1 spec then
	// describes the canary, and this is the revision it is compared with.
	AnnotationV1alpha2Default = "ferryserve.github.io/v1alpha2-default"
	// AnnotationV1alpha2NThread holds nthread of the converted endpoint's
	// xgboost or lightgbm predictor, which v1beta1 has no field for, so
	// that the v1alpha2 view gives it back.
	AnnotationV1alpha2NThread = "ferryserve.github.io/v1alpha2-nthread"
)

// InferenceServiceV1alpha2 is KFServing's v1alpha2 InferenceService: a
// default endpoint, an optional canary endpoint and the share of traffic the
// canary gets. Decode converts it to an InferenceService (v1beta1) as KFServing's
// conversion webhook did; ToV1alpha2 converts back.
type InferenceServiceV1alpha2 struct {
	TypeMeta
	Metadata ObjectMeta                      `json:"metadata"`
	Spec     InferenceServiceSpecV1alpha2    `json:"spec"`
	Status   *InferenceServiceStatusV1alpha2 `json:"status,omitempty"`
}

// InferenceServiceSpecV1alpha2 is the v1alpha2 spec.
type InferenceServiceSpecV1alpha2 struct {
	Default              EndpointSpecV1alpha2  `json:"default"`
	Canary               *EndpointSpecV1alpha2 `json:"canary,omitempty"`
	CanaryTrafficPercent *int64                `json:"canaryTrafficPercent,omitempty"`
}

// EndpointSpecV1alpha2 is one endpoint: a predictor and optionally a
// transformer and an explainer.
type EndpointSpecV1alpha2 struct {
	Predictor   PredictorSpecV1alpha2    `json:"predictor"`
	Explainer   *ExplainerSpecV1alpha2   `json:"explainer,omitempty"`
	Transformer *TransformerSpecV1alpha2 `json:"transformer,omitempty"`
}

// DeploymentSpecV1alpha2 holds the settings every v1alpha2 component shares.
// Parallelism became containerConcurrency in v1beta1.
type DeploymentSpecV1alpha2 struct {
	ServiceAccountName string          `json:"serviceAccountName,omitempty"`
	MinReplicas        *int32          `json:"minReplicas,omitempty"`
	MaxReplicas        int32           `json:"maxReplicas,omitempty"`
	Parallelism        int64           `json:"parallelism,omitempty"`
	Logger             *LoggerV1alpha2 `json:"logger,omitempty"`
	Batcher            *Batcher        `json:"batcher,omitempty"`
}

// LoggerV1alpha2 is the v1alpha2 logger: v1beta1's without metadataHeaders.
type LoggerV1alpha2 struct {
	URL  string `json:"url,omitempty"`
	Mode string `json:"mode,omitempty"`
}

// PredictorSpecV1alpha2 holds exactly one framework or a custom container.
type PredictorSpecV1alpha2 struct {
	Custom     *CustomSpecV1alpha2    `json:"custom,omitempty"`
	Tensorflow *FrameworkSpecV1alpha2 `json:"tensorflow,omitempty"`
	Triton     *FrameworkSpecV1alpha2 `json:"triton,omitempty"`
	XGBoost    *BoostedSpecV1alpha2   `json:"xgboost,omitempty"`
	LightGBM   *BoostedSpecV1alpha2   `json:"lightgbm,omitempty"`
	SKLearn    *FrameworkSpecV1alpha2 `json:"sklearn,omitempty"`
	ONNX       *FrameworkSpecV1alpha2 `json:"onnx,omitempty"`
	PyTorch    *PyTorchSpecV1alpha2   `json:"pytorch,omitempty"`
	PMML       *FrameworkSpecV1alpha2 `json:"pmml,omitempty"`
	DeploymentSpecV1alpha2
}

// FrameworkSpecV1alpha2 is what each v1alpha2 framework key holds.
type FrameworkSpecV1alpha2 struct {
	StorageURI     string               `json:"storageUri"`
	RuntimeVersion string               `json:"runtimeVersion,omitempty"`
	Resources      ResourceRequirements `json:"resources,omitzero"`
}

// BoostedSpecV1alpha2 is the xgboost and lightgbm key. NThread has no
// v1beta1 field; KFServing's conversion dropped it and so does Ferry's.
type BoostedSpecV1alpha2 struct {
	FrameworkSpecV1alpha2
	NThread int `json:"nthread,omitempty"`
}

// PyTorchSpecV1alpha2 is the pytorch key.
type PyTorchSpecV1alpha2 struct {
	FrameworkSpecV1alpha2
	ModelClassName string `json:"modelClassName,omitempty"`
}

// CustomSpecV1alpha2 wraps the one container of a custom component.
type CustomSpecV1alpha2 struct {
	Container Container `json:"container"`
}

// ExplainerSpecV1alpha2 holds exactly one of alibi, aix and custom.
type ExplainerSpecV1alpha2 struct {
	Alibi  *ExplainerConfigV1alpha2 `json:"alibi,omitempty"`
	AIX    *ExplainerConfigV1alpha2 `json:"aix,omitempty"`
	Custom *CustomSpecV1alpha2      `json:"custom,omitempty"`
	DeploymentSpecV1alpha2
}

// ExplainerConfigV1alpha2 configures a built-in explainer.
type ExplainerConfigV1alpha2 struct {
	Type           string               `json:"type"`
	StorageURI     string               `json:"storageUri,omitempty"`
	RuntimeVersion string               `json:"runtimeVersion,omitempty"`
	Resources      ResourceRequirements `json:"resources,omitzero"`
	Config         map[string]string    `json:"config,omitempty"`
}

// TransformerSpecV1alpha2 is a custom transformer.
type TransformerSpecV1alpha2 struct {
	Custom *CustomSpecV1alpha2 `json:"custom,omitempty"`
	DeploymentSpecV1alpha2
}

// InferenceServiceStatusV1alpha2 is the v1alpha2 status: per-endpoint
// revision names and the traffic split.
type InferenceServiceStatusV1alpha2 struct {
	ObservedGeneration int64                                  `json:"observedGeneration,omitempty"`
	Conditions         []Condition                            `json:"conditions,omitempty"`
	URL                string                                 `json:"url,omitempty"`
	Traffic            int64                                  `json:"traffic,omitempty"`
	CanaryTraffic      int64                                  `json:"canaryTraffic,omitempty"`
	Default            map[string]StatusConfigurationV1alpha2 `json:"default,omitempty"`
	Canary             map[string]StatusConfigurationV1alpha2 `json:"canary,omitempty"`
	Address            *Addressable                           `json:"address,omitempty"`
}

// StatusConfigurationV1alpha2 names a component's revision and host.
type StatusConfigurationV1alpha2 struct {
	Name     string `json:"name,omitempty"`
	Hostname string `json:"host,omitempty"`
}

// toV1beta1 converts src as KFServing 0.5's webhook did, with these
// differences, each to lose less of what the user wrote:
//   - A canary endpoint is not dropped: it becomes the v1beta1 spec with
//     canaryTrafficPercent (0 when unset) on each of its components, so the
//     canary is the latest revision and the rolled-out one keeps the rest; the
//     default endpoint is kept in AnnotationV1alpha2Default. KFServing 0.5
//     refused canaryTrafficPercent on v1alpha2 and silently dropped the canary.
//   - Logger, batcher and serviceAccountName of transformers and explainers,
//     and the explainer's config, are converted, not dropped.
//
// Status is not converted: it belongs to the controller, which rewrites it.
// prefix is the path of the object inside a List, or "". lenient (the
// conversion webhook's mode) leaves canaryTrafficPercent's range to
// Validate and puts a share given without spec.canary on the default
// endpoint's components, which is how the v1alpha2 view shows a v1beta1
// canary rollout.
func (src *InferenceServiceV1alpha2) toV1beta1(prefix string, lenient bool) (*InferenceService, error) {
	var errs fieldErrors
	spec := &src.Spec
	if p := spec.CanaryTrafficPercent; p != nil && !lenient {
		switch {
		case *p < 0 || *p > 100:
			errs.add(joinPath(prefix, "spec.canaryTrafficPercent"), "must be between 0 and 100, got %d", *p)
		case spec.Canary == nil && *p != 0:
			errs.add(joinPath(prefix, "spec.canaryTrafficPercent"), "a canary share of %d%% needs spec.canary, the endpoint that receives it; add spec.canary or remove canaryTrafficPercent", *p)
		}
	}
	spec.Default.checkOneOf(&errs, joinPath(prefix, "spec.default"))
	if spec.Canary != nil {
		spec.Canary.checkOneOf(&errs, joinPath(prefix, "spec.canary"))
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	dst := &InferenceService{
		TypeMeta: TypeMeta{APIVersion: src.Group() + "/" + VersionInferenceService, Kind: KindInferenceService},
		Metadata: src.Metadata,
	}
	dst.Metadata.Labels = maps.Clone(src.Metadata.Labels)
	dst.Metadata.Annotations = maps.Clone(src.Metadata.Annotations)
	if dst.Metadata.Annotations == nil {
		dst.Metadata.Annotations = make(map[string]string, 2)
	}
	dst.Metadata.Annotations[AnnotationConvertedFrom] = src.APIVersion
	delete(dst.Metadata.Annotations, AnnotationV1alpha2Default)
	delete(dst.Metadata.Annotations, AnnotationV1alpha2NThread)
	delete(dst.Metadata.Annotations, AnnotationV1beta1Spec)
	delete(dst.Metadata.Annotations, AnnotationV1beta1Status)

	ep := &spec.Default
	if spec.Canary != nil {
		ep = spec.Canary
		def, err := json.Marshal(&spec.Default)
		if err != nil {
			return nil, fmt.Errorf("%w: encoding spec.default: %w", ErrInvalid, err)
		}
		dst.Metadata.Annotations[AnnotationV1alpha2Default] = string(def)
	}
	dst.Spec = ep.toV1beta1()
	if n := ep.Predictor.nthread(); n != 0 {
		dst.Metadata.Annotations[AnnotationV1alpha2NThread] = strconv.Itoa(n)
	}
	if spec.Canary != nil || lenient && spec.CanaryTrafficPercent != nil {
		var pct int64
		if spec.CanaryTrafficPercent != nil {
			pct = *spec.CanaryTrafficPercent
		}
		for _, x := range []*ComponentExtensionSpec{dst.Spec.Predictor.Extensions(), extensionsOf(dst.Spec.Transformer), extensionsOf(dst.Spec.Explainer)} {
			if x != nil {
				x.CanaryTrafficPercent = &pct
			}
		}
	}
	return dst, nil
}

// nthread is the xgboost or lightgbm key's nthread, 0 for other keys.
func (p *PredictorSpecV1alpha2) nthread() int {
	switch {
	case p.XGBoost != nil:
		return p.XGBoost.NThread
	case p.LightGBM != nil:
		return p.LightGBM.NThread
	}
	return 0
}

// setNThread restores n on the xgboost or lightgbm key, if there is one.
func (p *PredictorSpecV1alpha2) setNThread(n int) {
	switch {
	case p.XGBoost != nil:
		p.XGBoost.NThread = n
	case p.LightGBM != nil:
		p.LightGBM.NThread = n
	}
}

// extensionsOf returns c's extensions, or nil for a nil component.
func extensionsOf[T any, P interface {
	*T
	Component
}](c P) *ComponentExtensionSpec {
	if c == nil {
		return nil
	}
	return c.Extensions()
}

// checkOneOf reports components that set more than one implementation,
// which conversion could not carry over; none is left for Validate to report
// as v1beta1's "exactly one" rule.
func (ep *EndpointSpecV1alpha2) checkOneOf(errs *fieldErrors, base string) {
	check := func(path string, keys []string, set ...bool) {
		var given []string
		for i, ok := range set {
			if ok {
				given = append(given, keys[i])
			}
		}
		if len(given) > 1 {
			errs.add(path, "exactly one of %s must be specified; given: %s", strings.Join(keys, ", "), strings.Join(given, ", "))
		}
	}
	p := &ep.Predictor
	check(base+".predictor", []string{"custom", "tensorflow", "triton", "xgboost", "lightgbm", "sklearn", "onnx", "pytorch", "pmml"},
		p.Custom != nil, p.Tensorflow != nil, p.Triton != nil, p.XGBoost != nil, p.LightGBM != nil, p.SKLearn != nil, p.ONNX != nil, p.PyTorch != nil, p.PMML != nil)
	if e := ep.Explainer; e != nil {
		check(base+".explainer", []string{"alibi", "aix", "custom"}, e.Alibi != nil, e.AIX != nil, e.Custom != nil)
	}
	if t := ep.Transformer; t != nil && t.Custom == nil {
		errs.add(base+".transformer.custom", "required: a v1alpha2 transformer is a custom container")
	}
}

// toV1beta1 converts one endpoint.
func (ep *EndpointSpecV1alpha2) toV1beta1() InferenceServiceSpec {
	var out InferenceServiceSpec
	p, q := &ep.Predictor, &out.Predictor
	fw := func(f *FrameworkSpecV1alpha2) *PredictorExtensionSpec {
		return &PredictorExtensionSpec{
			StorageURI:     f.StorageURI,
			RuntimeVersion: f.RuntimeVersion,
			Container:      Container{Resources: cloneResources(f.Resources)},
		}
	}
	switch {
	case p.Tensorflow != nil:
		q.Tensorflow = fw(p.Tensorflow)
	case p.SKLearn != nil:
		q.SKLearn = fw(p.SKLearn)
	case p.PMML != nil:
		q.PMML = fw(p.PMML)
	case p.XGBoost != nil:
		q.XGBoost = fw(&p.XGBoost.FrameworkSpecV1alpha2)
	case p.LightGBM != nil:
		q.LightGBM = fw(&p.LightGBM.FrameworkSpecV1alpha2)
	case p.Triton != nil:
		q.Triton = fw(p.Triton)
	case p.ONNX != nil:
		q.ONNX = fw(p.ONNX)
	case p.PyTorch != nil:
		q.PyTorch = &TorchServeSpec{ModelClassName: p.PyTorch.ModelClassName, PredictorExtensionSpec: *fw(&p.PyTorch.FrameworkSpecV1alpha2)}
	case p.Custom != nil:
		q.Containers = []Container{p.Custom.Container}
	}
	q.ServiceAccountName = p.ServiceAccountName
	q.ComponentExtensionSpec = p.DeploymentSpecV1alpha2.toV1beta1()

	if t := ep.Transformer; t != nil && t.Custom != nil {
		out.Transformer = &TransformerSpec{
			PodSpec:                PodSpec{Containers: []Container{t.Custom.Container}, ServiceAccountName: t.ServiceAccountName},
			ComponentExtensionSpec: t.DeploymentSpecV1alpha2.toV1beta1(),
		}
	}
	if e := ep.Explainer; e != nil {
		x := &ExplainerSpec{
			PodSpec:                PodSpec{ServiceAccountName: e.ServiceAccountName},
			ComponentExtensionSpec: e.DeploymentSpecV1alpha2.toV1beta1(),
		}
		cfg := func(c *ExplainerConfigV1alpha2) *ExplainerExtensionSpec {
			return &ExplainerExtensionSpec{
				Type:           c.Type,
				StorageURI:     c.StorageURI,
				RuntimeVersion: c.RuntimeVersion,
				Config:         maps.Clone(c.Config),
				Container:      Container{Resources: cloneResources(c.Resources)},
			}
		}
		switch {
		case e.Alibi != nil:
			x.Alibi = cfg(e.Alibi)
		case e.AIX != nil:
			x.AIX = cfg(e.AIX)
		case e.Custom != nil:
			x.Containers = []Container{e.Custom.Container}
		}
		out.Explainer = x
	}
	return out
}

func (d *DeploymentSpecV1alpha2) toV1beta1() ComponentExtensionSpec {
	x := ComponentExtensionSpec{MinReplicas: d.MinReplicas, MaxReplicas: d.MaxReplicas}
	if d.Parallelism != 0 {
		n := d.Parallelism
		x.ContainerConcurrency = &n
	}
	if d.Logger != nil {
		x.Logger = &LoggerSpec{URL: d.Logger.URL, Mode: d.Logger.Mode}
	}
	if d.Batcher != nil {
		b := *d.Batcher
		x.Batcher = &b
	}
	return x
}

func cloneResources(r ResourceRequirements) ResourceRequirements {
	return ResourceRequirements{Limits: maps.Clone(r.Limits), Requests: maps.Clone(r.Requests)}
}

// ToV1alpha2 converts the InferenceService to KFServing's v1alpha2 shape, as
// KFServing's webhook did when a client asked for v1alpha2: the spec becomes
// the default endpoint, or the canary endpoint when it was applied as one
// (the default endpoint then comes back from AnnotationV1alpha2Default). The
// group is kept. What v1alpha2 cannot express is dropped as KFServing dropped
// it (protocolVersion, container overrides on framework keys, scaling
// metrics, timeouts); specs it cannot express at all (the generic model
// form, frameworks added later such as paddle, explainers other than alibi
// and aix, several containers) are an error. ConvertToV1alpha2 is the
// lossless form a conversion webhook needs.
func (s *InferenceService) ToV1alpha2() (*InferenceServiceV1alpha2, error) {
	return s.toV1alpha2(false)
}

// toV1alpha2 is ToV1alpha2; lenient (the conversion webhook's mode) shows
// what v1alpha2 cannot express as well as it can instead of failing: a
// predictor or explainer without a v1alpha2 key has none in the view, and
// of several containers the first is shown.
func (s *InferenceService) toV1alpha2(lenient bool) (*InferenceServiceV1alpha2, error) {
	group := s.Group()
	if group == "" {
		group = GroupKubeflow // where KFServing served v1alpha2
	}
	out := &InferenceServiceV1alpha2{
		TypeMeta: TypeMeta{APIVersion: group + "/" + VersionV1alpha2, Kind: KindInferenceService},
		Metadata: s.Metadata,
	}
	out.Metadata.Labels = maps.Clone(s.Metadata.Labels)
	out.Metadata.Annotations = maps.Clone(s.Metadata.Annotations)
	for _, a := range []string{AnnotationConvertedFrom, AnnotationV1alpha2Default, AnnotationV1alpha2NThread, AnnotationV1beta1Spec, AnnotationV1beta1Status} {
		delete(out.Metadata.Annotations, a)
	}
	if len(out.Metadata.Annotations) == 0 {
		out.Metadata.Annotations = nil
	}
	ep, err := endpointFromV1beta1(&s.Spec, lenient)
	if err != nil {
		return nil, err
	}
	if n, err := strconv.Atoi(s.Metadata.Annotations[AnnotationV1alpha2NThread]); err == nil {
		ep.Predictor.setNThread(n)
	}
	canary := false
	if def, ok := s.Metadata.Annotations[AnnotationV1alpha2Default]; ok {
		var d EndpointSpecV1alpha2
		if err := json.Unmarshal([]byte(def), &d); err != nil {
			return nil, fmt.Errorf("%w: metadata.annotations[%s]: %w", ErrInvalid, AnnotationV1alpha2Default, err)
		}
		out.Spec.Default, out.Spec.Canary = d, ep
		canary = true
		pct := int64(0)
		if c := s.Spec.Predictor.CanaryTrafficPercent; c != nil {
			pct = *c
		}
		out.Spec.CanaryTrafficPercent = &pct
	} else {
		out.Spec.Default = *ep
		if c := s.Spec.Predictor.CanaryTrafficPercent; c != nil {
			pct := *c
			out.Spec.CanaryTrafficPercent = &pct
		}
	}
	if st := s.Status; st != nil {
		out.Status = statusToV1alpha2(st, canary)
	}
	return out, nil
}

func endpointFromV1beta1(s *InferenceServiceSpec, lenient bool) (*EndpointSpecV1alpha2, error) {
	var ep EndpointSpecV1alpha2
	p, q := &s.Predictor, &ep.Predictor
	impls := p.implementations()
	if len(impls) != 1 && !lenient {
		return nil, fmt.Errorf("%w: spec.predictor: exactly one implementation is needed to convert to %s, found %d", ErrInvalid, VersionV1alpha2, len(impls))
	}
	fw := func(e *PredictorExtensionSpec) *FrameworkSpecV1alpha2 {
		return &FrameworkSpecV1alpha2{StorageURI: e.StorageURI, RuntimeVersion: e.RuntimeVersion, Resources: cloneResources(e.Resources)}
	}
	key := ""
	if len(impls) == 1 {
		key = impls[0].key
	}
	switch key {
	case "sklearn":
		q.SKLearn = fw(p.SKLearn)
	case "xgboost":
		q.XGBoost = &BoostedSpecV1alpha2{FrameworkSpecV1alpha2: *fw(p.XGBoost)}
	case "lightgbm":
		q.LightGBM = &BoostedSpecV1alpha2{FrameworkSpecV1alpha2: *fw(p.LightGBM)}
	case "pmml":
		q.PMML = fw(p.PMML)
	case "onnx":
		q.ONNX = fw(p.ONNX)
	case "pytorch":
		q.PyTorch = &PyTorchSpecV1alpha2{FrameworkSpecV1alpha2: *fw(&p.PyTorch.PredictorExtensionSpec), ModelClassName: p.PyTorch.ModelClassName}
	case "tensorflow":
		q.Tensorflow = fw(p.Tensorflow)
	case "triton":
		q.Triton = fw(p.Triton)
	case implContainers:
		if len(p.Containers) != 1 && !lenient {
			return nil, fmt.Errorf("%w: spec.predictor.containers: %s holds one custom container, found %d", ErrInvalid, VersionV1alpha2, len(p.Containers))
		}
		q.Custom = &CustomSpecV1alpha2{Container: p.Containers[0]}
	default:
		if !lenient {
			return nil, fmt.Errorf("%w: spec.predictor.%s has no %s equivalent", ErrInvalid, key, VersionV1alpha2)
		}
	}
	q.DeploymentSpecV1alpha2 = deploymentFromV1beta1(&p.PodSpec, &p.ComponentExtensionSpec)
	if t := s.Transformer; t != nil {
		if len(t.Containers) != 1 && !lenient {
			return nil, fmt.Errorf("%w: spec.transformer.containers: %s holds one custom container, found %d", ErrInvalid, VersionV1alpha2, len(t.Containers))
		}
		var c Container
		if len(t.Containers) > 0 {
			c = t.Containers[0]
		}
		ep.Transformer = &TransformerSpecV1alpha2{
			Custom:                 &CustomSpecV1alpha2{Container: c},
			DeploymentSpecV1alpha2: deploymentFromV1beta1(&t.PodSpec, &t.ComponentExtensionSpec),
		}
	}
	if e := s.Explainer; e != nil {
		x := &ExplainerSpecV1alpha2{DeploymentSpecV1alpha2: deploymentFromV1beta1(&e.PodSpec, &e.ComponentExtensionSpec)}
		cfg := func(c *ExplainerExtensionSpec) *ExplainerConfigV1alpha2 {
			return &ExplainerConfigV1alpha2{Type: c.Type, StorageURI: c.StorageURI, RuntimeVersion: c.RuntimeVersion,
				Resources: cloneResources(c.Resources), Config: maps.Clone(c.Config)}
		}
		switch impls := e.implementations(); {
		case len(impls) != 1 && !lenient:
			return nil, fmt.Errorf("%w: spec.explainer: exactly one implementation is needed to convert to %s, found %d", ErrInvalid, VersionV1alpha2, len(impls))
		case len(impls) != 1:
		case e.Alibi != nil:
			x.Alibi = cfg(e.Alibi)
		case e.AIX != nil:
			x.AIX = cfg(e.AIX)
		case len(e.Containers) == 1 || lenient && len(e.Containers) > 1:
			x.Custom = &CustomSpecV1alpha2{Container: e.Containers[0]}
		case !lenient:
			return nil, fmt.Errorf("%w: spec.explainer.%s has no %s equivalent", ErrInvalid, impls[0].key, VersionV1alpha2)
		}
		ep.Explainer = x
	}
	return &ep, nil
}

func deploymentFromV1beta1(ps *PodSpec, x *ComponentExtensionSpec) DeploymentSpecV1alpha2 {
	d := DeploymentSpecV1alpha2{ServiceAccountName: ps.ServiceAccountName, MinReplicas: x.MinReplicas, MaxReplicas: x.MaxReplicas}
	if c := x.ContainerConcurrency; c != nil {
		d.Parallelism = *c
	}
	if l := x.Logger; l != nil {
		d.Logger = &LoggerV1alpha2{URL: l.URL, Mode: l.Mode}
	}
	if b := x.Batcher; b != nil {
		cp := *b
		d.Batcher = &cp
	}
	return d
}

// statusToV1alpha2 reshapes the status: each component's latest created
// revision and host, per endpoint, and the predictor's traffic split.
func statusToV1alpha2(st *InferenceServiceStatus, canary bool) *InferenceServiceStatusV1alpha2 {
	out := &InferenceServiceStatusV1alpha2{
		ObservedGeneration: st.ObservedGeneration,
		Conditions:         slices.Clone(st.Conditions),
		URL:                st.URL,
		Address:            st.Address,
	}
	for _, name := range sortedMapKeys(st.Components) {
		c := st.Components[name]
		host := c.URL
		if _, rest, ok := strings.Cut(host, "://"); ok {
			host, _, _ = strings.Cut(rest, "/")
		}
		if out.Default == nil {
			out.Default = make(map[string]StatusConfigurationV1alpha2)
		}
		rev := c.LatestRolledoutRevision
		if rev == "" || !canary {
			rev = c.LatestCreatedRevision
		}
		out.Default[name] = StatusConfigurationV1alpha2{Name: rev, Hostname: host}
		if canary {
			if out.Canary == nil {
				out.Canary = make(map[string]StatusConfigurationV1alpha2)
			}
			out.Canary[name] = StatusConfigurationV1alpha2{Name: c.LatestCreatedRevision, Hostname: host}
		}
		if name != ComponentPredictor {
			continue
		}
		for _, t := range c.Traffic {
			if t.Percent == nil {
				continue
			}
			if canary && t.LatestRevision != nil && *t.LatestRevision {
				out.CanaryTraffic += *t.Percent
			} else {
				out.Traffic += *t.Percent
			}
		}
	}
	return out
}

// v1alpha2Path maps a field path of the converted v1beta1 spec to where the
// user wrote it in v1alpha2; endpoint is "spec.default" or "spec.canary".
func v1alpha2Path(path, endpoint string) string {
	for _, comp := range []string{ComponentPredictor, ComponentTransformer, ComponentExplainer} {
		base := "spec." + comp
		rest, ok := strings.CutPrefix(path, base)
		if !ok || rest != "" && rest[0] != '.' {
			continue
		}
		switch {
		case strings.HasPrefix(rest, ".containers[0]"):
			rest = ".custom.container" + strings.TrimPrefix(rest, ".containers[0]")
		case rest == ".containerConcurrency":
			rest = ".parallelism"
		case rest == ".canaryTrafficPercent":
			return "spec.canaryTrafficPercent"
		}
		return endpoint + "." + comp + rest
	}
	return path
}
