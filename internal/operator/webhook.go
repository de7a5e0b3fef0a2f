package operator

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/router"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Paths the admission webhooks are served at, as config/webhook's
// configurations name them.
const (
	WebhookPathMutateInferenceService   = "/mutate-inferenceservice"
	WebhookPathValidateInferenceService = "/validate-inferenceservice"
	WebhookPathMutateTrainedModel       = "/mutate-trainedmodel"
	WebhookPathValidateTrainedModel     = "/validate-trainedmodel"
	WebhookPathValidateInferenceGraph   = "/validate-inferencegraph"
	// WebhookPathConvert converts serving.kubeflow.org InferenceServices
	// between v1alpha2 and v1beta1 (the CRD's conversion webhook).
	WebhookPathConvert = "/convert"
)

// WebhookConfig configures the admission webhooks and their certificate.
type WebhookConfig struct {
	// Port serves the webhooks over TLS; 0 serves none.
	Port int
	// Host is the address to listen on ("" for every address).
	Host string
	// Service ("namespace/name") is the Service the API server calls the
	// webhooks through; the certificate is made for its DNS names.
	Service string
	// IPs are more addresses the certificate is valid for (tests call the
	// webhooks at 127.0.0.1).
	IPs []net.IP
	// Secret ("namespace/name") keeps the certificate so that replicas and
	// restarts share it; else CertDir keeps it in files; else it lives in
	// memory and a restart makes a new one.
	Secret  string
	CertDir string
	// Configurations are the Validating- and MutatingWebhookConfigurations
	// (by name; a name may be both kinds) whose caBundle the operator
	// keeps equal to its CA.
	Configurations []string
	// ConversionCRDs are the CustomResourceDefinitions (by name; Ferry's
	// is ConversionCRD) whose conversion webhook calls WebhookPathConvert:
	// the operator keeps their caBundle equal to its CA and their Service
	// equal to Service.
	ConversionCRDs []string
	// CertLifetime is how long a certificate is valid (DefaultCertLifetime
	// when 0); it is renewed when a third of that is left.
	CertLifetime time.Duration
	// CheckInterval is how often the stored certificate and the
	// configurations' caBundle are checked (DefaultCertCheckInterval when
	// 0); SwitchGrace is how long a renewed certificate waits between the
	// publication of its CA and being served (DefaultCertSwitchGrace when
	// 0, negative for none).
	CheckInterval time.Duration
	SwitchGrace   time.Duration
}

// Defaults of WebhookConfig.
const (
	DefaultCertLifetime      = 365 * 24 * time.Hour
	DefaultCertCheckInterval = time.Minute
	DefaultCertSwitchGrace   = 10 * time.Second
)

// validate reports what is wrong with w.
func (w WebhookConfig) validate() error {
	if w.Port == 0 {
		return nil
	}
	var errs []error
	if w.Port < 0 || w.Port > 65535 {
		errs = append(errs, fmt.Errorf("--webhook-port %d: want 1-65535, or 0 for no webhooks", w.Port))
	}
	if w.Service == "" && len(w.IPs) == 0 {
		errs = append(errs, errors.New("webhooks need --webhook-service (namespace/name), the Service the API server calls them through"))
	}
	if w.Service != "" {
		if _, err := parseNamespacedName("--webhook-service", w.Service); err != nil {
			errs = append(errs, err)
		}
	}
	if w.Secret != "" {
		if _, err := parseNamespacedName("--webhook-secret", w.Secret); err != nil {
			errs = append(errs, err)
		}
		if w.CertDir != "" {
			errs = append(errs, errors.New("--webhook-secret and --webhook-cert-dir: keep the certificate in one place"))
		}
	}
	if w.CertLifetime < 0 || w.CertLifetime > 0 && w.CertLifetime < 3*time.Second {
		errs = append(errs, fmt.Errorf("--webhook-cert-lifetime %s: too short", w.CertLifetime))
	}
	return errors.Join(errs...)
}

// dnsNames are the names the API server calls the Service by.
func (w WebhookConfig) dnsNames() []string {
	if w.Service == "" {
		return nil
	}
	nn, _ := parseNamespacedName("", w.Service)
	base := nn.Name + "." + nn.Namespace + ".svc"
	return []string{base, base + ".cluster.local"}
}

func parseNamespacedName(flag, s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("%s %q: want namespace/name", flag, s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// addWebhooks registers the webhook server and the certificate manager
// on mgr; both run on every replica, leader or not.
func addWebhooks(mgr manager.Manager, w WebhookConfig, log *slog.Logger) error {
	if w.Port == 0 {
		return nil
	}
	var store certStore = &memStore{}
	switch {
	case w.Secret != "":
		nn, _ := parseNamespacedName("", w.Secret) // checked by validate
		store = secretStore{reader: mgr.GetAPIReader(), writer: mgr.GetClient(), key: nn}
	case w.CertDir != "":
		store = dirStore{dir: w.CertDir}
	}
	var service types.NamespacedName
	if w.Service != "" {
		service, _ = parseNamespacedName("", w.Service) // checked by validate
	}
	cm := &certManager{
		issuer:         certIssuer{dnsNames: w.dnsNames(), ips: w.IPs, lifetime: cmp.Or(w.CertLifetime, DefaultCertLifetime)},
		store:          store,
		reader:         mgr.GetAPIReader(),
		writer:         mgr.GetClient(),
		configurations: w.Configurations,
		crds:           w.ConversionCRDs,
		service:        service,
		interval:       cmp.Or(w.CheckInterval, DefaultCertCheckInterval),
		grace:          cmp.Or(w.SwitchGrace, DefaultCertSwitchGrace),
		now:            time.Now,
		log:            log,
	}
	srv := webhook.NewServer(webhook.Options{
		Host: w.Host,
		Port: w.Port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) {
			c.GetCertificate = cm.GetCertificate
			c.MinVersion = tls.VersionTLS12
		}},
	})
	for path, h := range webhookHandlers() {
		srv.Register(path, &admission.Webhook{Handler: h})
	}
	srv.Register(WebhookPathConvert, converter{log: log})
	if err := mgr.Add(srv); err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	if err := mgr.Add(cm); err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook-certificate", cm.ready); err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	return nil
}

// webhookHandlers maps each path to its handler.
func webhookHandlers() map[string]admission.Handler {
	return map[string]admission.Handler{
		WebhookPathMutateInferenceService:   admitter{kind: api.KindInferenceService, mutate: true},
		WebhookPathValidateInferenceService: admitter{kind: api.KindInferenceService},
		WebhookPathMutateTrainedModel:       admitter{kind: api.KindTrainedModel, mutate: true},
		WebhookPathValidateTrainedModel:     admitter{kind: api.KindTrainedModel},
		WebhookPathValidateInferenceGraph:   admitter{kind: api.KindInferenceGraph},
	}
}

// admitter is the admission handler of one kind, either group: the
// validating one denies what `ferry apply` refuses, with its message; the
// mutating one patches in what `ferry apply`'s defaulting fills in, among
// the fields KServe's defaulter sets.
type admitter struct {
	kind   string
	mutate bool
}

var _ admission.Handler = admitter{}

// Handle implements admission.Handler.
func (a admitter) Handle(_ context.Context, req admission.Request) admission.Response {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	obj, err := a.object(req.Kind.Group, req.Kind.Version, req.Kind.Kind, req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	switch {
	case a.kind == api.KindTrainedModel && a.mutate:
		// KServe has no TrainedModel defaulter; Ferry's (the namespace,
		// a lower-cased framework) is applied when read, not written.
		return admission.Allowed("")
	case a.kind == api.KindTrainedModel:
		return a.validateTrainedModel(req, obj)
	case a.kind == api.KindInferenceGraph:
		return validateInferenceGraph(obj)
	case a.mutate && req.Kind.Version == api.VersionV1alpha2:
		// Only a configuration that names v1alpha2 sends it here (with
		// matchPolicy Equivalent, Ferry's, the API server converts the
		// object to v1beta1 first): defaults are applied when read.
		return admission.Allowed("")
	case a.mutate:
		return defaultInferenceService(req.Object.Raw, obj)
	}
	isvc, err := admittedInferenceService(req.Kind.Version, obj)
	if err != nil {
		return admission.Denied(err.Error())
	}
	isvc.Default()
	if err := isvc.Validate(); err != nil {
		return admission.Denied(err.Error())
	}
	// The A/B annotations, refused as `ferry apply` refuses them (the
	// operator writes their rules into the service's HTTPRoute).
	if _, err := router.ParseAffinity(isvc.Metadata.Annotations); err != nil {
		return admission.Denied(err.Error())
	}
	return admission.Allowed("")
}

// admittedInferenceService decodes an admitted InferenceService, converting
// a v1alpha2 one as the conversion webhook does (the same errors).
func admittedInferenceService(version string, obj map[string]any) (*api.InferenceService, error) {
	if version != api.VersionV1alpha2 {
		isvc, _, err := decode(&unstructured.Unstructured{Object: obj})
		return isvc, err
	}
	var src api.InferenceServiceV1alpha2
	if err := convertJSON(obj, &src); err != nil {
		return nil, fmt.Errorf("%w: %w", api.ErrInvalid, err)
	}
	return src.ConvertToV1beta1()
}

// object decodes raw, the admitted object, checking that it is the
// handler's kind in one of the groups and versions Ferry serves.
func (a admitter) object(group, version, kind string, raw []byte) (map[string]any, error) {
	want := api.VersionInferenceService
	switch a.kind {
	case api.KindTrainedModel:
		want = api.VersionTrainedModel
	case api.KindInferenceGraph:
		want = api.VersionInferenceGraph
	}
	okVersion := version == want || a.kind == api.KindInferenceService && version == api.VersionV1alpha2
	if kind != a.kind || !okVersion || group != api.GroupKServe && group != api.GroupKubeflow {
		return nil, fmt.Errorf("this webhook admits %s %s of %s or %s, not %s %s of %q", a.kind, want, api.GroupKServe, api.GroupKubeflow, kind, version, group)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errors.New("admission request has no object")
	}
	obj, err := decodeJSONObject("admitted object", raw)
	if err != nil {
		return nil, err
	}
	if k, _ := obj["kind"].(string); k != a.kind {
		return nil, fmt.Errorf("admitted object: kind %q, want %s", k, a.kind)
	}
	if av, _ := obj["apiVersion"].(string); av != group+"/"+version {
		return nil, fmt.Errorf("admitted object: apiVersion %q, want %s/%s", av, group, version)
	}
	return obj, nil
}

// decodeJSONObject decodes one JSON object, keeping numbers as written;
// what names it in errors ("admitted object").
func decodeJSONObject(what string, raw []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("%s: empty", what)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if obj == nil {
		return nil, fmt.Errorf("%s: null", what)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: data after the object", what)
	}
	return obj, nil
}

// validateTrainedModel denies a model `ferry apply` refuses, and on update
// a changed memory (KServe's rule: the parent's room was checked for it).
func (a admitter) validateTrainedModel(req admission.Request, obj map[string]any) admission.Response {
	tm, invalid := decodeTrainedModel(&unstructured.Unstructured{Object: obj})
	if invalid != "" {
		return admission.Denied(invalid)
	}
	if req.Operation != admissionv1.Update || len(req.OldObject.Raw) == 0 {
		return admission.Allowed("")
	}
	oldObj, err := decodeJSONObject("old object", req.OldObject.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	old, oldInvalid := decodeTrainedModel(&unstructured.Unstructured{Object: oldObj})
	if oldInvalid != "" {
		old = nil // nothing trustworthy to compare against
	}
	if err := tm.ValidateUpdate(old); err != nil {
		return admission.Denied(err.Error())
	}
	return admission.Allowed("")
}

// validateInferenceGraph denies a graph `ferry apply` refuses, with its
// message. Graphs have no defaulting webhook: KServe has none, and step
// dependencies default by node type when the graph runs.
func validateInferenceGraph(obj map[string]any) admission.Response {
	ig := &api.InferenceGraph{}
	if err := convertJSON(obj, ig); err != nil {
		return admission.Denied(fmt.Sprintf("%v: %v", api.ErrInvalid, err))
	}
	ig.Default()
	if err := ig.Validate(); err != nil {
		return admission.Denied(err.Error())
	}
	return admission.Allowed("")
}

// defaultInferenceService patches raw with what api's defaulting fills in
// (see kserveDefaulted). An object api cannot decode is let through
// unpatched: the schema or the validating webhook refuses it.
func defaultInferenceService(raw []byte, obj map[string]any) admission.Response {
	isvc, _, err := decode(&unstructured.Unstructured{Object: obj})
	if err != nil {
		return admission.Allowed("")
	}
	changes, err := defaultedSpec(isvc)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	spec, _ := obj["spec"].(map[string]any)
	if spec == nil {
		return admission.Allowed("")
	}
	n := 0
	for _, c := range changes {
		if setPath(spec, c.path, c.value) {
			n++
		}
	}
	if n == 0 {
		return admission.Allowed("")
	}
	patched, err := json.Marshal(obj)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.PatchResponseFromRaw(raw, patched)
}

// change is one value defaulting sets, at a path of map keys (string)
// and list indices (int) below spec.
type change struct {
	path  []any
	value any
}

// defaultedSpec runs api's defaulting on isvc (which it changes) and
// returns what it set among the fields KServe's defaulter sets.
func defaultedSpec(isvc *api.InferenceService) ([]change, error) {
	before, err := jsonTree(isvc.Spec)
	if err != nil {
		return nil, err
	}
	isvc.Default()
	after, err := jsonTree(isvc.Spec)
	if err != nil {
		return nil, err
	}
	var all, out []change
	diffTree(nil, before, after, &all)
	for _, c := range all {
		if kserveDefaulted.MatchString(pathString(c.path)) {
			out = append(out, c)
		}
	}
	return out, nil
}

// kserveDefaulted matches the spec paths KServe's defaulting webhook
// fills in and api's defaulting does too: a component's model container's
// name, resources (cpu and memory requests and limits) and protocol
// version, minReplicas, the logger's mode and the batcher's limits. api
// also defaults probe ports (Knative does, in the revision) and
// canonicalises modelFormat names; those are applied when the operator
// reads the object, not written into it.
var kserveDefaulted = regexp.MustCompile(`^(predictor|transformer|explainer)\.(` +
	`([A-Za-z0-9]+|containers\[0\])\.(name|resources(\.(requests|limits)(\.(cpu|memory))?)?)` +
	`|[A-Za-z0-9]+\.protocolVersion` +
	`|minReplicas|logger\.mode|batcher\.(maxBatchSize|maxLatency))$`)

// jsonTree is v as encoding/json renders it, numbers kept as written.
func jsonTree(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var t any
	if err := dec.Decode(&t); err != nil {
		return nil, err
	}
	return t, nil
}

// diffTree appends to out each value of after that before lacks or holds
// differently, at the highest path where they differ; lists are compared
// element by element only when their lengths agree. What after lacks is
// not reported: defaulting only adds.
func diffTree(path []any, before, after any, out *[]change) {
	switch a := after.(type) {
	case map[string]any:
		if b, ok := before.(map[string]any); ok {
			keys := make([]string, 0, len(a))
			for k := range a {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				p := append(slices.Clip(path), k)
				if bv, ok := b[k]; ok {
					diffTree(p, bv, a[k], out)
				} else {
					*out = append(*out, change{p, a[k]})
				}
			}
			return
		}
	case []any:
		if b, ok := before.([]any); ok && len(b) == len(a) {
			for i := range a {
				diffTree(append(slices.Clip(path), i), b[i], a[i], out)
			}
			return
		}
	}
	if !reflect.DeepEqual(before, after) {
		*out = append(*out, change{path, after})
	}
}

// pathString renders a path as "predictor.containers[0].name".
func pathString(path []any) string {
	var sb strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(p)
		case int:
			sb.WriteString("[" + strconv.Itoa(p) + "]")
		}
	}
	return sb.String()
}

// setPath sets v at path below root, making the objects on the way that
// are missing or null; it reports false, changing nothing, when the path
// crosses something else (a list too short, a string where an object
// should be, a list index below a missing object).
func setPath(root map[string]any, path []any, v any) bool {
	if !reachable(root, path) {
		return false
	}
	var cur any = root
	for i, p := range path {
		last := i == len(path)-1
		switch p := p.(type) {
		case string:
			m := cur.(map[string]any)
			if last {
				m[p] = v
				return true
			}
			if m[p] == nil {
				m[p] = map[string]any{}
			}
			cur = m[p]
		case int:
			l := cur.([]any)
			if last {
				l[p] = v
				return true
			}
			cur = l[p]
		}
	}
	return false
}

// reachable reports whether setPath can set path below root.
func reachable(root map[string]any, path []any) bool {
	var cur any = root
	for _, p := range path {
		if cur == nil {
			// Below a missing object: only keys can be made.
			_, isKey := p.(string)
			if !isKey {
				return false
			}
			continue
		}
		switch p := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return false
			}
			cur = m[p]
		case int:
			l, ok := cur.([]any)
			if !ok || p < 0 || p >= len(l) {
				return false
			}
			cur = l[p]
		default:
			return false
		}
	}
	return len(path) > 0
}

// WebhookConfigurations returns a ValidatingWebhookConfiguration and a
// MutatingWebhookConfiguration that register Ferry's webhooks as
// config/webhook does, with an empty caBundle for the operator to fill
// in; clientConfig says how the API server reaches a path (a Service, or
// a URL in tests).
func WebhookConfigurations(validating, mutating string, clientConfig func(path string) admissionregistrationv1.WebhookClientConfig) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration) {
	fail := admissionregistrationv1.Fail
	// Equivalent (the API's default, written out because the webhooks
	// rely on it): an InferenceService written at
	// serving.kubeflow.org/v1alpha2 is converted to v1beta1 by the
	// conversion webhook and admitted at v1beta1, so defaulting patches
	// the v1beta1 fields.
	equivalent := admissionregistrationv1.Equivalent
	none := admissionregistrationv1.SideEffectClassNone
	never := admissionregistrationv1.NeverReinvocationPolicy
	timeout := int32(10)
	rules := func(version, resource string) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{api.GroupKServe, api.GroupKubeflow},
				APIVersions: []string{version},
				Resources:   []string{resource},
			},
		}}
	}
	isvc, tm := rules(api.VersionInferenceService, "inferenceservices"), rules(api.VersionTrainedModel, "trainedmodels")
	// Only serving.kserve.io has graphs; the rule names both groups as the
	// others do, and matches nothing in the second.
	ig := rules(api.VersionInferenceGraph, "inferencegraphs")
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	v.Name = validating
	for _, w := range []struct {
		name, path string
		rules      []admissionregistrationv1.RuleWithOperations
	}{
		{"inferenceservice.validate.serving.ferry.dev", WebhookPathValidateInferenceService, isvc},
		{"trainedmodel.validate.serving.ferry.dev", WebhookPathValidateTrainedModel, tm},
		{"inferencegraph.validate.serving.ferry.dev", WebhookPathValidateInferenceGraph, ig},
	} {
		v.Webhooks = append(v.Webhooks, admissionregistrationv1.ValidatingWebhook{
			Name: w.name, ClientConfig: clientConfig(w.path), Rules: w.rules,
			FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout, MatchPolicy: &equivalent,
			AdmissionReviewVersions: []string{"v1"},
		})
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{}
	m.Name = mutating
	for _, w := range []struct {
		name, path string
		rules      []admissionregistrationv1.RuleWithOperations
	}{
		{"inferenceservice.default.serving.ferry.dev", WebhookPathMutateInferenceService, isvc},
		{"trainedmodel.default.serving.ferry.dev", WebhookPathMutateTrainedModel, tm},
	} {
		m.Webhooks = append(m.Webhooks, admissionregistrationv1.MutatingWebhook{
			Name: w.name, ClientConfig: clientConfig(w.path), Rules: w.rules,
			FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout, MatchPolicy: &equivalent,
			AdmissionReviewVersions: []string{"v1"}, ReinvocationPolicy: &never,
		})
	}
	return v, m
}
