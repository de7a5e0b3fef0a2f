package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Implementation keys that are not framework names.
const (
	implModel      = "model"
	implContainers = "containers"
)

// implementation is one filled-in implementation of a component.
type implementation struct {
	key       string                  // JSON key under the component
	ext       *PredictorExtensionSpec // predictor frameworks and model
	explainer *ExplainerExtensionSpec // built-in explainers
}

// predictorKeys lists the predictor implementations in the order errors name
// them.
var predictorKeys = []string{"sklearn", "xgboost", "lightgbm", "pmml", "onnx", "pytorch", "tensorflow", "triton", "paddle", implModel, implContainers}

var explainerKeys = []string{"alibi", "aix", "art", implContainers}

func (p *PredictorSpec) implementations() []implementation {
	var out []implementation
	add := func(key string, ext *PredictorExtensionSpec) {
		if ext != nil {
			out = append(out, implementation{key: key, ext: ext})
		}
	}
	add("sklearn", p.SKLearn)
	add("xgboost", p.XGBoost)
	add("lightgbm", p.LightGBM)
	add("pmml", p.PMML)
	add("onnx", p.ONNX)
	if p.PyTorch != nil {
		add("pytorch", &p.PyTorch.PredictorExtensionSpec)
	}
	add("tensorflow", p.Tensorflow)
	add("triton", p.Triton)
	add("paddle", p.Paddle)
	if p.Model != nil {
		add(implModel, &p.Model.PredictorExtensionSpec)
	}
	if len(p.Containers) > 0 {
		out = append(out, implementation{key: implContainers})
	}
	return out
}

func (e *ExplainerSpec) implementations() []implementation {
	var out []implementation
	add := func(key string, x *ExplainerExtensionSpec) {
		if x != nil {
			out = append(out, implementation{key: key, explainer: x})
		}
	}
	add("alibi", e.Alibi)
	add("aix", e.AIX)
	add("art", e.ART)
	if len(e.Containers) > 0 {
		out = append(out, implementation{key: implContainers})
	}
	return out
}

// FormatCustom is the format PredictorFormat reports for custom containers.
const FormatCustom = "custom"

// PredictorFormat says how to serve the predictor. format is the framework
// key (sklearn, xgboost, lightgbm, pmml, onnx, pytorch, tensorflow, triton),
// the lower-cased modelFormat.name of the generic form, or FormatCustom.
// storageURI is empty for a multi-model server. protocol is the defaulted
// protocolVersion (v1 when unset; for custom containers the PROTOCOL
// environment variable if it names one). custom is the container to run: the
// first of spec.predictor.containers, or the framework's inline container
// when it sets an image or command (an override of the built-in server);
// otherwise nil. It returns empty strings when the spec does not hold exactly
// one implementation, which Validate reports.
func (s *InferenceService) PredictorFormat() (format, storageURI, protocol string, custom *Container) {
	p := &s.Spec.Predictor
	impls := p.implementations()
	if len(impls) != 1 {
		return "", "", "", nil
	}
	impl := impls[0]
	if impl.key == implContainers {
		c := &p.Containers[0]
		protocol = ProtocolV1
		for _, e := range c.Env {
			switch e.Name {
			case StorageURIEnv:
				storageURI = e.Value
			case "PROTOCOL":
				if isProtocol(e.Value) {
					protocol = e.Value
				}
			}
		}
		return FormatCustom, storageURI, protocol, c
	}
	format = impl.key
	if impl.key == implModel {
		format = canonicalFormat(p.Model.ModelFormat.Name)
	}
	protocol = impl.ext.ProtocolVersion
	if protocol == "" {
		protocol = defaultProtocol(format)
	}
	if impl.ext.Image != "" || len(impl.ext.Command) > 0 {
		custom = &impl.ext.Container
	}
	return format, impl.ext.StorageURI, protocol, custom
}

// ComponentSpecHash returns the hex SHA-256 of the canonical JSON of one
// component's spec (struct fields in declaration order, map keys sorted).
// canaryTrafficPercent is left out: as in Knative, changing only the traffic
// split must not create a new revision. Hash defaulted specs, so that spelling
// out a default does not count as a change.
func ComponentSpecHash(c Component) string {
	var v any
	switch c := c.(type) {
	case *PredictorSpec:
		cp := *c
		cp.CanaryTrafficPercent = nil
		v = cp
	case *TransformerSpec:
		cp := *c
		cp.CanaryTrafficPercent = nil
		v = cp
	case *ExplainerSpec:
		cp := *c
		cp.CanaryTrafficPercent = nil
		v = cp
	default:
		v = c
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Only unencodable values (NaN, channels) fail, and the spec types
		// hold none; hash the error text so the result stays stable.
		b = []byte(err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// PredictorContainer returns the container of the predictor's model
// server: the framework's (or model's) inline container, or the first of
// spec.predictor.containers; nil when the spec does not hold exactly one
// implementation.
func (s *InferenceService) PredictorContainer() *Container {
	impls := s.Spec.Predictor.implementations()
	switch {
	case len(impls) != 1:
		return nil
	case impls[0].key == implContainers:
		return &s.Spec.Predictor.Containers[0]
	}
	return &impls[0].ext.Container
}
