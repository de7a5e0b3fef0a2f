package operator

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// CRDs returns the CustomResourceDefinitions the operator serves, built from
// internal/api's Go types rather than from marker comments: those types
// carry custom JSON handling (Quantity, IntOrString, inlined structs) that
// this walker maps the way encoding/json reads them, so the schema cannot
// drift from what Ferry decodes. config/crd holds the rendered files and a
// test fails when they differ from this.
func CRDs() []*apiextv1.CustomResourceDefinition {
	return []*apiextv1.CustomResourceDefinition{
		newCRD(api.GroupKServe, api.VersionInferenceService, api.KindInferenceService, "inferenceservices", []string{"isvc"},
			reflect.TypeFor[api.InferenceServiceSpec](), reflect.TypeFor[api.InferenceServiceStatus](), isvcColumns()),
		newCRD(api.GroupKServe, api.VersionTrainedModel, api.KindTrainedModel, "trainedmodels", []string{"tm"},
			reflect.TypeFor[api.TrainedModelSpec](), reflect.TypeFor[api.TrainedModelStatus](), tmColumns()),
		// KServe's columns for graphs are those of TrainedModels.
		newCRD(api.GroupKServe, api.VersionInferenceGraph, api.KindInferenceGraph, "inferencegraphs", []string{"ig"},
			reflect.TypeFor[api.InferenceGraphSpec](), reflect.TypeFor[api.InferenceGraphStatus](), tmColumns()),
		// KFServing 0.5's group, with its v1alpha2 served through the
		// operator's conversion webhook. No short names: "isvc" and "tm"
		// stay with serving.kserve.io, which kubectl would otherwise pick
		// between.
		kubeflowInferenceServices(),
		newCRD(api.GroupKubeflow, api.VersionTrainedModel, api.KindTrainedModel, "trainedmodels", nil,
			reflect.TypeFor[api.TrainedModelSpec](), reflect.TypeFor[api.TrainedModelStatus](), tmColumns()),
	}
}

// Where the API server calls the conversion webhook, as config/webhook
// installs it; the operator points the CRD at its own --webhook-service
// when that is another (the Helm chart's crds/ cannot be templated).
const (
	DefaultWebhookServiceNamespace = "ferry-system"
	DefaultWebhookServiceName      = "ferry-webhook-service"
	webhookServicePort             = 443
)

// ConversionCRD is the CRD whose versions the conversion webhook converts.
const ConversionCRD = "inferenceservices." + api.GroupKubeflow

// kubeflowInferenceServices is serving.kubeflow.org's InferenceService:
// v1beta1, stored, and v1alpha2, KFServing ≤ 0.5's older shape, converted
// by the operator at WebhookPathConvert (ConversionReview v1). The
// caBundle is left empty for the operator to fill in.
func kubeflowInferenceServices() *apiextv1.CustomResourceDefinition {
	crd := newCRD(api.GroupKubeflow, api.VersionInferenceService, api.KindInferenceService, "inferenceservices", nil,
		reflect.TypeFor[api.InferenceServiceSpec](), reflect.TypeFor[api.InferenceServiceStatus](), isvcColumns())
	crd.Spec.Versions = append(crd.Spec.Versions, crdVersion(api.VersionV1alpha2, false,
		reflect.TypeFor[api.InferenceServiceSpecV1alpha2](), reflect.TypeFor[api.InferenceServiceStatusV1alpha2](), v1alpha2Columns()))
	crd.Spec.Conversion = &apiextv1.CustomResourceConversion{
		Strategy: apiextv1.WebhookConverter,
		Webhook: &apiextv1.WebhookConversion{
			ClientConfig: &apiextv1.WebhookClientConfig{Service: &apiextv1.ServiceReference{
				Namespace: DefaultWebhookServiceNamespace,
				Name:      DefaultWebhookServiceName,
				Path:      ptr(WebhookPathConvert),
				Port:      ptr(int32(webhookServicePort)),
			}},
			ConversionReviewVersions: []string{"v1"},
		},
	}
	return crd
}

// v1alpha2Columns are KFServing 0.5's v1alpha2 columns.
func v1alpha2Columns() []apiextv1.CustomResourceColumnDefinition {
	return []apiextv1.CustomResourceColumnDefinition{
		{Name: "URL", Type: "string", JSONPath: ".status.url"},
		{Name: "Ready", Type: "string", JSONPath: ".status.conditions[?(@.type=='Ready')].status"},
		{Name: "Default Traffic", Type: "integer", JSONPath: ".status.traffic"},
		{Name: "Canary Traffic", Type: "integer", JSONPath: ".status.canaryTraffic"},
		{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	}
}

// isvcColumns are the columns `kubectl get isvc` shows with KServe's CRD.
func isvcColumns() []apiextv1.CustomResourceColumnDefinition {
	return []apiextv1.CustomResourceColumnDefinition{
		{Name: "URL", Type: "string", JSONPath: ".status.url"},
		{Name: "Ready", Type: "string", JSONPath: ".status.conditions[?(@.type=='Ready')].status"},
		{Name: "Prev", Type: "integer", JSONPath: ".status.components.predictor.traffic[?(@.tag=='prev')].percent"},
		{Name: "Latest", Type: "integer", JSONPath: ".status.components.predictor.traffic[?(@.latestRevision==true)].percent"},
		{Name: "PrevRolledoutRevision", Type: "string", Priority: 1, JSONPath: ".status.components.predictor.traffic[?(@.tag=='prev')].revisionName"},
		{Name: "LatestReadyRevision", Type: "string", Priority: 1, JSONPath: ".status.components.predictor.traffic[?(@.latestRevision==true)].revisionName"},
		{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	}
}

func tmColumns() []apiextv1.CustomResourceColumnDefinition {
	return []apiextv1.CustomResourceColumnDefinition{
		{Name: "URL", Type: "string", JSONPath: ".status.url"},
		{Name: "Ready", Type: "string", JSONPath: ".status.conditions[?(@.type=='Ready')].status"},
		{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"},
	}
}

func newCRD(group, version, kind, plural string, short []string, spec, status reflect.Type, cols []apiextv1.CustomResourceColumnDefinition) *apiextv1.CustomResourceDefinition {
	return &apiextv1.CustomResourceDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextv1.CustomResourceDefinitionNames{
				Kind:       kind,
				ListKind:   kind + "List",
				Plural:     plural,
				Singular:   strings.ToLower(kind),
				ShortNames: short,
			},
			Scope:    apiextv1.NamespaceScoped,
			Versions: []apiextv1.CustomResourceDefinitionVersion{crdVersion(version, true, spec, status, cols)},
		},
	}
}

// crdVersion is one served version with its schema, built from the Go
// types of its spec and status.
func crdVersion(name string, storage bool, spec, status reflect.Type, cols []apiextv1.CustomResourceColumnDefinition) apiextv1.CustomResourceDefinitionVersion {
	root := apiextv1.JSONSchemaProps{
		Type: "object",
		Properties: map[string]apiextv1.JSONSchemaProps{
			"apiVersion": {Type: "string"},
			"kind":       {Type: "string"},
			"metadata":   {Type: "object"},
			"spec":       schemaFor(spec),
			"status":     schemaFor(status),
		},
	}
	return apiextv1.CustomResourceDefinitionVersion{
		Name:                     name,
		Served:                   true,
		Storage:                  storage,
		Schema:                   &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &root},
		Subresources:             &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
		AdditionalPrinterColumns: cols,
	}
}

var (
	quantityType    = reflect.TypeFor[api.Quantity]()
	intOrStringType = reflect.TypeFor[api.IntOrString]()
	timeType        = reflect.TypeFor[time.Time]()
)

// schemaFor maps a Go type to a structural OpenAPI schema, following
// encoding/json's rules: embedded structs without a JSON name are inlined,
// `json:"-"` is skipped. Open-ended values (map[string]any, any) keep
// unknown fields, which a structural schema allows only when it says so.
func schemaFor(t reflect.Type) apiextv1.JSONSchemaProps {
	switch t {
	case quantityType:
		// Kubernetes' own types decode `cpu: 0.5` in Go, but a CRD's
		// int-or-string schema refuses a JSON number that is not an
		// integer, and KServe's samples write such numbers (kubectl
		// apply of them failed here). Any scalar is kept and api's
		// decoding checks it.
		return apiextv1.JSONSchemaProps{
			Description:            "A Kubernetes quantity: a string such as 500m or 2Gi, or a number.",
			XPreserveUnknownFields: ptr(true),
		}
	case intOrStringType:
		return apiextv1.JSONSchemaProps{
			AnyOf:        []apiextv1.JSONSchemaProps{{Type: "integer"}, {Type: "string"}},
			XIntOrString: true,
		}
	case timeType:
		return apiextv1.JSONSchemaProps{Type: "string", Format: "date-time"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaFor(t.Elem())
	case reflect.String:
		return apiextv1.JSONSchemaProps{Type: "string"}
	case reflect.Bool:
		return apiextv1.JSONSchemaProps{Type: "boolean"}
	case reflect.Int32, reflect.Uint32, reflect.Int16, reflect.Uint16, reflect.Int8, reflect.Uint8:
		return apiextv1.JSONSchemaProps{Type: "integer", Format: "int32"}
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64:
		return apiextv1.JSONSchemaProps{Type: "integer", Format: "int64"}
	case reflect.Float32, reflect.Float64:
		return apiextv1.JSONSchemaProps{Type: "number"}
	case reflect.Interface:
		return apiextv1.JSONSchemaProps{XPreserveUnknownFields: ptr(true)}
	case reflect.Slice, reflect.Array:
		items := schemaFor(t.Elem())
		return apiextv1.JSONSchemaProps{Type: "array", Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &items}}
	case reflect.Map:
		if t.Elem().Kind() == reflect.Interface {
			return apiextv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: ptr(true)}
		}
		v := schemaFor(t.Elem())
		return apiextv1.JSONSchemaProps{Type: "object", AdditionalProperties: &apiextv1.JSONSchemaPropsOrBool{Allows: true, Schema: &v}}
	case reflect.Struct:
		props := map[string]apiextv1.JSONSchemaProps{}
		addFields(props, t)
		return apiextv1.JSONSchemaProps{Type: "object", Properties: props}
	}
	// A kind the api package does not use (channels, funcs, complex numbers)
	// has no JSON form; failing loudly here is caught by the golden test.
	panic(fmt.Sprintf("operator: no schema for Go type %s", t))
}

func addFields(props map[string]apiextv1.JSONSchemaProps, t reflect.Type) {
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(props, ft)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := props[name]; dup {
			// encoding/json lets the shallower field win; the inlining above
			// visits the outer struct's own fields in order, and the api
			// types have no such clash, so keep the first.
			continue
		}
		props[name] = schemaFor(f.Type)
	}
}

func ptr[T any](v T) *T { return &v }

// RenderCRD returns crd as the YAML committed under config/crd: without the
// server-populated status and creationTimestamp, so the file is stable.
func RenderCRD(crd *apiextv1.CustomResourceDefinition) ([]byte, error) {
	b, err := json.Marshal(crd)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append([]byte("# Generated from internal/api's Go types by internal/operator (CRDs).\n# Do not edit: run `go test ./internal/operator -run TestCRDFiles -update`.\n"), out...), nil
}

// CRDFileName is the file under config/crd that holds crd.
func CRDFileName(crd *apiextv1.CustomResourceDefinition) string {
	return crd.Spec.Group + "_" + crd.Spec.Names.Plural + ".yaml"
}
