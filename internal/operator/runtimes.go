package operator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RuntimesKey is the ConfigMap key that holds the runtimes, as in KServe's
// inferenceservice-config.
const RuntimesKey = "predictors"

// Runtimes are the serving runtime images by framework, read from a
// ConfigMap shaped like the "predictors" key of KServe's
// inferenceservice-config: each key a framework ("tensorflow", "triton",
// "pytorch", or a built-in format such as "sklearn" to replace ferry serve
// for it), each value an image with its default tags, or such entries by
// protocol ("v1", "v2").
type Runtimes map[string]*Runtime

// Runtime is one entry of Runtimes.
type Runtime struct {
	Image                  string   `json:"image,omitempty"`
	DefaultImageVersion    string   `json:"defaultImageVersion,omitempty"`
	DefaultGPUImageVersion string   `json:"defaultGpuImageVersion,omitempty"`
	DefaultTimeout         jsonInt  `json:"defaultTimeout,omitempty"`
	SupportedFrameworks    []string `json:"supportedFrameworks,omitempty"`
	MultiModelServer       bool     `json:"multiModelServer,omitempty"`
	// Server picks the arguments the container gets (tfserving, triton,
	// torchserve, onnxruntime or kserve, KServe's Python servers'
	// --model_name/--model_dir/--http_port); by default the key's:
	// tensorflow → tfserving, triton → triton, pytorch → torchserve,
	// onnx → onnxruntime, anything else → kserve. A Ferry extension.
	Server string `json:"server,omitempty"`
	// V1 and V2 are entries by protocol version, as KServe 0.5 writes
	// sklearn's and xgboost's.
	V1 *Runtime `json:"v1,omitempty"`
	V2 *Runtime `json:"v2,omitempty"`
}

// jsonInt reads a number written as a JSON number or string ("60", as
// KServe's defaultTimeout is).
type jsonInt int64

func (n *jsonInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(bytes.TrimSpace(b), `"`))
	if s == "" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not a whole number", b)
	}
	*n = jsonInt(v)
	return nil
}

// Servers Runtime.Server names.
const (
	ServerTFServing   = "tfserving"
	ServerTriton      = "triton"
	ServerTorchServe  = "torchserve"
	ServerONNXRuntime = "onnxruntime"
	ServerKServe      = "kserve"
)

// ParseRuntimes reads the JSON of a runtimes ConfigMap's predictors key.
func ParseRuntimes(data []byte) (Runtimes, error) {
	var rt Runtimes
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rt); err != nil {
		return nil, fmt.Errorf("runtimes: %w", err)
	}
	for key, r := range rt {
		if r == nil {
			return nil, fmt.Errorf("runtimes: %s: empty entry", key)
		}
		entries := map[string]*Runtime{key: r}
		if r.V1 != nil || r.V2 != nil {
			entries = map[string]*Runtime{key + ".v1": r.V1, key + ".v2": r.V2}
		}
		for name, e := range entries {
			if e == nil {
				continue
			}
			if e.Image == "" {
				return nil, fmt.Errorf("runtimes: %s: no image", name)
			}
			switch e.Server {
			case "", ServerTFServing, ServerTriton, ServerTorchServe, ServerONNXRuntime, ServerKServe:
			default:
				return nil, fmt.Errorf("runtimes: %s: server %q is not one of tfserving, triton, torchserve, onnxruntime, kserve", name, e.Server)
			}
		}
	}
	return rt, nil
}

// LoadRuntimes reads the runtimes ConfigMap ref ("namespace/name") with r.
func LoadRuntimes(ctx context.Context, r client.Reader, ref string) (Runtimes, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("--runtimes-configmap %q: want namespace/name", ref)
	}
	var cm corev1.ConfigMap
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		return nil, fmt.Errorf("runtimes configmap %s: %w", ref, err)
	}
	data, ok := cm.Data[RuntimesKey]
	if !ok {
		return nil, fmt.Errorf("runtimes configmap %s has no %q key", ref, RuntimesKey)
	}
	rt, err := ParseRuntimes([]byte(data))
	if err != nil {
		return nil, fmt.Errorf("configmap %s: %w", ref, err)
	}
	return rt, nil
}

// lookup finds the runtime for a predictor format: the entry named
// runtime when the spec names one (model.runtime), else the format's key,
// else an entry whose supportedFrameworks lists the format (Triton's lists
// tensorrt, onnx, ...). Protocol picks a v1/v2 sub-entry. It returns the
// key the runtime was found under.
func (rt Runtimes) lookup(format, runtime, protocol string) (*Runtime, string) {
	pick := func(key string) *Runtime {
		r := rt[key]
		if r == nil || (r.V1 == nil && r.V2 == nil) {
			return r
		}
		if strings.HasSuffix(protocol, "v2") {
			return r.V2
		}
		return r.V1
	}
	if runtime != "" {
		return pick(runtime), runtime
	}
	if r := pick(format); r != nil {
		return r, format
	}
	keys := make([]string, 0, len(rt))
	for k := range rt {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if r := pick(k); r != nil && slices.Contains(r.SupportedFrameworks, format) {
			return r, k
		}
	}
	return nil, ""
}

// server is the kind of arguments r's container gets.
func (r *Runtime) server(key string) string {
	if r.Server != "" {
		return r.Server
	}
	switch key {
	case "tensorflow":
		return ServerTFServing
	case "triton":
		return ServerTriton
	case "pytorch":
		return ServerTorchServe
	case "onnx":
		return ServerONNXRuntime
	}
	return ServerKServe
}

// image is r's image with its tag: runtimeVersion when the spec sets one,
// else the GPU default when the container asks for a GPU, else the
// default, as KServe picks it.
func (r *Runtime) image(runtimeVersion string, gpu bool) string {
	tag := runtimeVersion
	if tag == "" && gpu {
		tag = r.DefaultGPUImageVersion
	}
	if tag == "" {
		tag = r.DefaultImageVersion
	}
	if tag == "" {
		return r.Image
	}
	return r.Image + ":" + tag
}
