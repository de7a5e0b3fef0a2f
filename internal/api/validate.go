package api

import (
	"encoding/json"
	"errors"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// NameFormat is the pattern InferenceService and TrainedModel names match.
const NameFormat = "[a-z]([-a-z0-9]*[a-z0-9])?"

const maxNameLength = 63

var (
	nameRE      = regexp.MustCompile("^" + NameFormat + "$")
	namespaceRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	envNameRE   = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
	portNameRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
)

var (
	protocols    = []string{ProtocolV1, ProtocolV2, ProtocolGRPCV1, ProtocolGRPCV2}
	scaleMetrics = []string{"cpu", "memory", "concurrency", "rps"}
	loggerModes  = []string{LogAll, LogRequest, LogResponse}

	// formatProtocols is what KServe's runtimes serve per framework key
	// (config/runtimes/kserve-*.yaml); Triton serves only V2.
	formatProtocols = map[string][]string{
		"sklearn":    {ProtocolV1, ProtocolV2},
		"xgboost":    {ProtocolV1, ProtocolV2},
		"lightgbm":   {ProtocolV1, ProtocolV2},
		"pmml":       {ProtocolV1, ProtocolV2},
		"onnx":       {ProtocolV1, ProtocolV2, ProtocolGRPCV2},
		"pytorch":    {ProtocolV1, ProtocolV2, ProtocolGRPCV2},
		"tensorflow": {ProtocolV1, ProtocolGRPCV1},
		"triton":     {ProtocolV2, ProtocolGRPCV2},
		"paddle":     {ProtocolV1, ProtocolV2},
	}
	// modelFormatProtocols is the same for modelFormat.name in the generic
	// form, where any runtime supporting the format may be chosen
	// (TensorFlow then also through Triton).
	modelFormatProtocols = map[string][]string{
		"sklearn":     {ProtocolV1, ProtocolV2},
		"xgboost":     {ProtocolV1, ProtocolV2},
		"lightgbm":    {ProtocolV1, ProtocolV2},
		"pmml":        {ProtocolV1, ProtocolV2},
		"onnx":        {ProtocolV1, ProtocolV2, ProtocolGRPCV2},
		"pytorch":     {ProtocolV1, ProtocolV2, ProtocolGRPCV2},
		"tensorflow":  {ProtocolV1, ProtocolGRPCV1, ProtocolV2, ProtocolGRPCV2},
		"triton":      {ProtocolV2, ProtocolGRPCV2},
		"tensorrt":    {ProtocolV2, ProtocolGRPCV2},
		"mlflow":      {ProtocolV2},
		"huggingface": {ProtocolV1, ProtocolV2},
		"paddle":      {ProtocolV1, ProtocolV2},
	}
	explainerTypes = map[string][]string{
		"alibi": {"AnchorTabular", "AnchorImages", "AnchorText", "Counterfactuals", "Contrastive", "KernelShap", "TreeShap"},
		"aix":   {"LimeImages"},
		"art":   {"SquareAttack", "HopSkipJump"}, // KServe admits SquareAttack only; Ferry runs both
	}
)

func isProtocol(s string) bool { return slices.Contains(protocols, s) }

// Validate implements Object. It reports every rule KServe's validating
// webhook (and the Kubernetes API server, for the container fields) would
// reject, each with its field path.
//
// For an object converted from v1alpha2 the paths are those the user wrote
// (spec.default.predictor.sklearn.storageUri), and the default endpoint kept
// beside a canary is validated too.
func (s *InferenceService) Validate() error {
	var errs fieldErrors
	checkMeta(&errs, &s.Metadata)
	validateSpec(&errs, s.Group(), &s.Spec)
	if from := s.Metadata.Annotations[AnnotationConvertedFrom]; strings.HasSuffix(from, "/"+VersionV1alpha2) {
		endpoint := "spec.default"
		if def, ok := s.Metadata.Annotations[AnnotationV1alpha2Default]; ok {
			endpoint = "spec.canary"
			validateV1alpha2Default(&errs, s.Group(), def)
		}
		for i := range errs {
			errs[i].Path = v1alpha2Path(errs[i].Path, endpoint)
		}
	}
	return errs.err()
}

func validateSpec(errs *fieldErrors, group string, spec *InferenceServiceSpec) {
	validatePredictor(errs, group, &spec.Predictor)
	if t := spec.Transformer; t != nil {
		validateTransformer(errs, t)
	}
	if e := spec.Explainer; e != nil {
		validateExplainer(errs, e)
	}
}

// validateV1alpha2Default converts, defaults and validates the v1alpha2
// default endpoint kept in AnnotationV1alpha2Default, reporting its problems
// under spec.default.
func validateV1alpha2Default(errs *fieldErrors, group, def string) {
	var ep EndpointSpecV1alpha2
	if err := json.Unmarshal([]byte(def), &ep); err != nil {
		errs.add("metadata.annotations."+AnnotationV1alpha2Default, "invalid v1alpha2 endpoint: %v", err)
		return
	}
	tmp := InferenceService{TypeMeta: TypeMeta{APIVersion: group + "/" + VersionInferenceService, Kind: KindInferenceService}}
	tmp.Metadata.Name = "x"
	tmp.Spec = ep.toV1beta1()
	tmp.Default()
	var sub fieldErrors
	validateSpec(&sub, group, &tmp.Spec)
	for _, fe := range sub {
		errs.add(v1alpha2Path(fe.Path, "spec.default"), "%s", fe.Message)
	}
}

func checkMeta(errs *fieldErrors, m *ObjectMeta) {
	checkName(errs, "metadata.name", m.Name)
	if m.Namespace != "" && (len(m.Namespace) > maxNameLength || !namespaceRE.MatchString(m.Namespace)) {
		errs.add("metadata.namespace", "invalid namespace %q: must be a DNS label of at most %d lower case alphanumerics or '-'", m.Namespace, maxNameLength)
	}
}

func checkName(errs *fieldErrors, p, name string) {
	switch {
	case name == "":
		errs.add(p, "required")
	case !nameRE.MatchString(name):
		errs.add(p, "invalid name %q: must consist of lower case alphanumerics or '-', start with a letter and end with an alphanumeric (regex %s)", name, NameFormat)
	case len(name) > maxNameLength:
		errs.add(p, "name %q is %d characters long; at most %d allowed", name, len(name), maxNameLength)
	}
}

func implKeys(impls []implementation) []string {
	keys := make([]string, len(impls))
	for i, im := range impls {
		keys[i] = im.key
	}
	return keys
}

func checkExactlyOne(errs *fieldErrors, p string, all []string, impls []implementation) bool {
	switch len(impls) {
	case 1:
		return true
	case 0:
		errs.add(p, "exactly one of %s must be specified; none given", strings.Join(all, ", "))
	default:
		errs.add(p, "exactly one of %s must be specified; given: %s", strings.Join(all, ", "), strings.Join(implKeys(impls), ", "))
	}
	return false
}

func validatePredictor(errs *fieldErrors, group string, p *PredictorSpec) {
	const base = "spec.predictor"
	impls := p.implementations()
	if checkExactlyOne(errs, base, predictorKeys, impls) {
		impl := impls[0]
		switch impl.key {
		case implContainers:
			validatePodContainers(errs, base, &p.PodSpec)
		case implModel:
			validateModel(errs, base+".model", p.Model)
		default:
			pp := base + "." + impl.key
			validateFrameworkSpec(errs, pp, impl.ext)
			checkProtocol(errs, pp+".protocolVersion", impl.key, impl.ext.ProtocolVersion, formatProtocols[impl.key])
			if impl.key == "pytorch" && group == GroupKubeflow && impl.ext.ProtocolVersion == ProtocolV2 {
				errs.add(pp+".protocolVersion", "PyTorch protocol v2 is not supported in %s; use %s", GroupKubeflow, GroupKServe)
			}
			if impl.key == "onnx" && impl.ext.StorageURI != "" {
				if ext := path.Ext(impl.ext.StorageURI); ext != "" && ext != ".onnx" {
					errs.add(pp+".storageUri", "expected file extension \".onnx\", got %q", ext)
				}
			}
		}
	}
	validateExtensions(errs, base, &p.ComponentExtensionSpec)
}

func validateFrameworkSpec(errs *fieldErrors, p string, ext *PredictorExtensionSpec) {
	checkStorageURI(errs, p+".storageUri", ext.StorageURI)
	validateStorage(errs, p, ext.Storage, ext.StorageURI)
	validateContainer(errs, p, &ext.Container)
}

func validateModel(errs *fieldErrors, p string, m *ModelSpec) {
	validateFrameworkSpec(errs, p, &m.PredictorExtensionSpec)
	name := canonicalFormat(m.ModelFormat.Name)
	if name == "" {
		errs.add(p+".modelFormat.name", "required")
		return
	}
	supported, known := modelFormatProtocols[name]
	switch {
	case known:
		checkProtocol(errs, p+".protocolVersion", name, m.ProtocolVersion, supported)
	case m.Runtime == "":
		errs.add(p+".modelFormat.name", "no runtime supports model format %q; supported: %s (or name a runtime)", m.ModelFormat.Name, strings.Join(sortedMapKeys(modelFormatProtocols), ", "))
	default:
		checkProtocol(errs, p+".protocolVersion", name, m.ProtocolVersion, protocols)
	}
}

func checkProtocol(errs *fieldErrors, p, format, proto string, supported []string) {
	switch {
	case proto == "":
	case !isProtocol(proto):
		errs.add(p, "unsupported value %q; supported: %s", proto, strings.Join(protocols, ", "))
	case !slices.Contains(supported, proto):
		errs.add(p, "protocol %q is not supported by %s; supported: %s", proto, format, strings.Join(supported, ", "))
	}
}

func validateTransformer(errs *fieldErrors, t *TransformerSpec) {
	const base = "spec.transformer"
	if len(t.Containers) == 0 {
		errs.add(base+".containers", "at least one container with an image or command is required")
	}
	validatePodContainers(errs, base, &t.PodSpec)
	validateExtensions(errs, base, &t.ComponentExtensionSpec)
}

func validateExplainer(errs *fieldErrors, e *ExplainerSpec) {
	const base = "spec.explainer"
	impls := e.implementations()
	if checkExactlyOne(errs, base, explainerKeys, impls) {
		impl := impls[0]
		if x := impl.explainer; x != nil {
			p := base + "." + impl.key
			types := explainerTypes[impl.key]
			switch {
			case x.Type == "":
				errs.add(p+".type", "required; supported: %s", strings.Join(types, ", "))
			case !slices.Contains(types, x.Type):
				errs.add(p+".type", "unsupported value %q; supported: %s", x.Type, strings.Join(types, ", "))
			}
			checkStorageURI(errs, p+".storageUri", x.StorageURI)
			validateStorage(errs, p, x.Storage, x.StorageURI)
			validateContainer(errs, p, &x.Container)
		}
	}
	validatePodContainers(errs, base, &e.PodSpec)
	validateExtensions(errs, base, &e.ComponentExtensionSpec)
}

// validatePodContainers checks the inline pod containers; each must name an
// image or a command, since it is what will be run.
func validatePodContainers(errs *fieldErrors, base string, ps *PodSpec) {
	seen := make(map[string]bool)
	for i := range ps.Containers {
		c := &ps.Containers[i]
		p := base + ".containers[" + itoa(i) + "]"
		if c.Image == "" && len(c.Command) == 0 {
			errs.add(p, "image or command is required")
		}
		if c.Name != "" {
			if seen[c.Name] {
				errs.add(p+".name", "duplicate container name %q", c.Name)
			}
			seen[c.Name] = true
		}
		validateContainer(errs, p, c)
		if i == 0 {
			for j, e := range c.Env {
				if e.Name == StorageURIEnv {
					checkStorageURI(errs, p+".env["+itoa(j)+"].value", e.Value)
				}
			}
		}
	}
}

func validateContainer(errs *fieldErrors, p string, c *Container) {
	for i, e := range c.Env {
		ep := p + ".env[" + itoa(i) + "]"
		switch {
		case e.Name == "":
			errs.add(ep+".name", "required")
		case !envNameRE.MatchString(e.Name):
			errs.add(ep+".name", "invalid environment variable name %q", e.Name)
		}
		if e.Value != "" && e.ValueFrom != nil {
			errs.add(ep+".valueFrom", "may not be specified when value is not empty")
		}
	}
	portNames := make(map[string]bool)
	for i, port := range c.Ports {
		pp := p + ".ports[" + itoa(i) + "]"
		checkPort(errs, pp+".containerPort", int64(port.ContainerPort))
		if port.Protocol != "" && !slices.Contains([]string{"TCP", "UDP", "SCTP"}, port.Protocol) {
			errs.add(pp+".protocol", "unsupported value %q; supported: TCP, UDP, SCTP", port.Protocol)
		}
		if port.Name != "" {
			if len(port.Name) > 15 || !portNameRE.MatchString(port.Name) {
				errs.add(pp+".name", "invalid port name %q: at most 15 lower case alphanumerics or '-'", port.Name)
			}
			portNames[port.Name] = true
		}
	}
	validateResources(errs, p+".resources", &c.Resources)
	validateProbe(errs, p+".readinessProbe", c.ReadinessProbe, portNames, false)
	validateProbe(errs, p+".livenessProbe", c.LivenessProbe, portNames, true)
	validateProbe(errs, p+".startupProbe", c.StartupProbe, portNames, true)
}

func checkPort(errs *fieldErrors, p string, port int64) {
	if port < 1 || port > 65535 {
		errs.add(p, "must be between 1 and 65535, got %d", port)
	}
}

func validateResources(errs *fieldErrors, p string, r *ResourceRequirements) {
	values := func(kind string, m map[string]Quantity) map[string]float64 {
		out := make(map[string]float64, len(m))
		for _, name := range sortedMapKeys(m) {
			v, err := m[name].Value()
			switch {
			case err != nil:
				errs.add(p+"."+kind+"."+name, "invalid quantity %q", string(m[name]))
			case v < 0:
				errs.add(p+"."+kind+"."+name, "must be non-negative, got %q", string(m[name]))
			default:
				out[name] = v
			}
		}
		return out
	}
	limits := values("limits", r.Limits)
	requests := values("requests", r.Requests)
	for _, name := range sortedMapKeys(requests) {
		if l, ok := limits[name]; ok && requests[name] > l {
			errs.add(p+".requests."+name, "request %q must be less than or equal to the limit %q", string(r.Requests[name]), string(r.Limits[name]))
		}
	}
}

func validateProbe(errs *fieldErrors, p string, pr *Probe, portNames map[string]bool, liveness bool) {
	if pr == nil {
		return
	}
	handlers := 0
	if h := pr.HTTPGet; h != nil {
		handlers++
		checkProbePort(errs, p+".httpGet.port", h.Port, portNames)
		if h.Scheme != "" && h.Scheme != "HTTP" && h.Scheme != "HTTPS" {
			errs.add(p+".httpGet.scheme", "unsupported value %q; supported: HTTP, HTTPS", h.Scheme)
		}
	}
	if t := pr.TCPSocket; t != nil {
		handlers++
		checkProbePort(errs, p+".tcpSocket.port", t.Port, portNames)
	}
	if e := pr.Exec; e != nil {
		handlers++
		if len(e.Command) == 0 {
			errs.add(p+".exec.command", "required")
		}
	}
	if g := pr.GRPC; g != nil {
		handlers++
		checkPort(errs, p+".grpc.port", int64(g.Port))
	}
	if handlers != 1 {
		errs.add(p, "exactly one of httpGet, tcpSocket, exec, grpc must be specified; %d given", handlers)
	}
	for _, f := range []struct {
		name string
		v    int32
	}{
		{"initialDelaySeconds", pr.InitialDelaySeconds},
		{"timeoutSeconds", pr.TimeoutSeconds},
		{"periodSeconds", pr.PeriodSeconds},
		{"successThreshold", pr.SuccessThreshold},
		{"failureThreshold", pr.FailureThreshold},
	} {
		if f.v < 0 {
			errs.add(p+"."+f.name, "must be non-negative, got %d", f.v)
		}
	}
	if liveness && pr.SuccessThreshold > 1 {
		errs.add(p+".successThreshold", "must be 1, got %d", pr.SuccessThreshold)
	}
}

func checkProbePort(errs *fieldErrors, p string, port IntOrString, portNames map[string]bool) {
	if port.IsZero() {
		return // the serving port; Default fills it in
	}
	if !port.IsString {
		checkPort(errs, p, int64(port.Int))
		return
	}
	if !portNames[port.Str] {
		errs.add(p, "no container port named %q", port.Str)
	}
}

func validateExtensions(errs *fieldErrors, base string, x *ComponentExtensionSpec) {
	minReplicas := int32(DefaultMinReplicas)
	if x.MinReplicas != nil {
		minReplicas = *x.MinReplicas
	}
	if minReplicas < 0 {
		errs.add(base+".minReplicas", "must be greater than or equal to 0, got %d", minReplicas)
	}
	if x.MaxReplicas < 0 {
		errs.add(base+".maxReplicas", "must be greater than or equal to 0, got %d", x.MaxReplicas)
	} else if x.MaxReplicas != 0 && minReplicas > x.MaxReplicas {
		errs.add(base+".maxReplicas", "must be greater than or equal to minReplicas (%d), got %d", minReplicas, x.MaxReplicas)
	}
	if c := x.ContainerConcurrency; c != nil && *c < 0 {
		errs.add(base+".containerConcurrency", "must be greater than or equal to 0, got %d", *c)
	}
	if t := x.TimeoutSeconds; t != nil && *t <= 0 {
		errs.add(base+".timeout", "must be greater than 0, got %d", *t)
	}
	if c := x.CanaryTrafficPercent; c != nil && (*c < 0 || *c > 100) {
		errs.add(base+".canaryTrafficPercent", "must be between 0 and 100, got %d", *c)
	}
	if x.ScaleMetric != "" && !slices.Contains(scaleMetrics, x.ScaleMetric) {
		errs.add(base+".scaleMetric", "unsupported value %q; supported: %s", x.ScaleMetric, strings.Join(scaleMetrics, ", "))
	}
	if t := x.ScaleTarget; t != nil && *t <= 0 {
		errs.add(base+".scaleTarget", "must be greater than 0, got %d", *t)
	} else if t != nil && x.ScaleMetric == "cpu" && *t > 100 {
		errs.add(base+".scaleTarget", "a cpu target is a utilization percentage between 1 and 100, got %d", *t)
	}
	if l := x.Logger; l != nil {
		if l.Mode != "" && !slices.Contains(loggerModes, l.Mode) {
			errs.add(base+".logger.mode", "unsupported value %q; supported: %s", l.Mode, strings.Join(loggerModes, ", "))
		}
		checkSinkURL(errs, base+".logger.url", l.URL)
	}
	if b := x.Batcher; b != nil {
		for _, f := range []struct {
			name string
			v    *int
		}{{"maxBatchSize", b.MaxBatchSize}, {"maxLatency", b.MaxLatency}, {"timeout", b.Timeout}} {
			if f.v != nil && *f.v <= 0 {
				errs.add(base+".batcher."+f.name, "must be greater than 0, got %d", *f.v)
			}
		}
	}
}

// checkSinkURL accepts KServe's http(s) sinks and, as a Ferry extension,
// file:///absolute/path for a JSON-lines file.
func checkSinkURL(errs *fieldErrors, p, raw string) {
	if raw == "" {
		errs.add(p, "required")
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err == nil && u.Scheme == "file" && u.Host == "" && strings.HasPrefix(u.Path, "/"):
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		errs.add(p, "invalid URL %q: expected an absolute http:// or https:// URL (or file:///path for a JSON-lines file)", raw)
	}
}

// Validate implements Object with the checks of KServe's TrainedModel
// webhook plus the required fields of its CRD schema.
func (m *TrainedModel) Validate() error {
	var errs fieldErrors
	checkMeta(&errs, &m.Metadata)
	if m.Spec.InferenceService == "" {
		errs.add("spec.inferenceService", "required")
	} else {
		checkName(&errs, "spec.inferenceService", m.Spec.InferenceService)
	}
	checkTrainedModelURI(&errs, "spec.model.storageUri", m.Spec.Model.StorageURI)
	if m.Spec.Model.Framework == "" {
		errs.add("spec.model.framework", "required")
	}
	switch v, err := m.Spec.Model.Memory.Value(); {
	case m.Spec.Model.Memory == "":
		errs.add("spec.model.memory", "required")
	case err != nil:
		errs.add("spec.model.memory", "invalid quantity %q", string(m.Spec.Model.Memory))
	case v <= 0:
		errs.add("spec.model.memory", "must be greater than 0, got %q", string(m.Spec.Model.Memory))
	}
	return errs.err()
}

// ValidateUpdate is Validate plus the rule KServe's TrainedModel webhook
// applies to updates: memory cannot change, because the parent's capacity
// was checked against it when the model was placed.
func (m *TrainedModel) ValidateUpdate(old *TrainedModel) error {
	var errs fieldErrors
	if err := m.Validate(); err != nil {
		var ve *ValidationError
		if !errors.As(err, &ve) {
			return err
		}
		errs = append(errs, ve.Errors...)
	}
	if old != nil && !sameQuantity(old.Spec.Model.Memory, m.Spec.Model.Memory) {
		errs.add("spec.model.memory", "field is immutable: was %q, now %q", string(old.Spec.Model.Memory), string(m.Spec.Model.Memory))
	}
	return errs.err()
}

func sameQuantity(a, b Quantity) bool {
	if a == b {
		return true
	}
	av, aerr := a.Value()
	bv, berr := b.Value()
	return aerr == nil && berr == nil && av == bv
}

func sortedMapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func itoa(i int) string { return strconv.Itoa(i) }
