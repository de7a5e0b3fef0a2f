package operator

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// kserve05Predictors is the shape of the "predictors" key of KFServing
// 0.5's inferenceservice-config ConfigMap (config/configmap/
// inferenceservice.yaml at v0.5.1): plain entries, entries split by
// protocol ("v1"/"v2"), defaultTimeout written as a string. The images and
// tags are the ones that file ships.
const kserve05Predictors = `{
  "tensorflow": {
    "image": "tensorflow/serving",
    "defaultImageVersion": "1.14.0",
    "defaultGpuImageVersion": "1.14.0-gpu",
    "defaultTimeout": "60",
    "supportedFrameworks": ["tensorflow"],
    "multiModelServer": false
  },
  "sklearn": {
    "v1": {"image": "gcr.io/kfserving/sklearnserver", "defaultImageVersion": "latest", "supportedFrameworks": ["sklearn"], "multiModelServer": true},
    "v2": {"image": "docker.io/seldonio/mlserver", "defaultImageVersion": "0.2.1", "supportedFrameworks": ["sklearn"], "multiModelServer": false}
  },
  "pytorch": {
    "v1": {"image": "gcr.io/kfserving/pytorchserver", "defaultImageVersion": "latest", "defaultGpuImageVersion": "latest-gpu", "supportedFrameworks": ["pytorch"]},
    "v2": {"image": "pytorch/torchserve-kfs", "defaultImageVersion": "0.4.0", "defaultGpuImageVersion": "0.4.0-gpu", "supportedFrameworks": ["pytorch"]}
  },
  "triton": {
    "image": "nvcr.io/nvidia/tritonserver",
    "defaultImageVersion": "20.08-py3",
    "supportedFrameworks": ["tensorrt", "tensorflow", "onnx", "pytorch", "caffe2"],
    "multiModelServer": true
  }
}`

func TestParseRuntimes(t *testing.T) {
	rt, err := ParseRuntimes([]byte(kserve05Predictors))
	if err != nil {
		t.Fatal(err)
	}
	tf := rt["tensorflow"]
	if tf == nil || tf.Image != "tensorflow/serving" || tf.DefaultImageVersion != "1.14.0" ||
		tf.DefaultGPUImageVersion != "1.14.0-gpu" || tf.DefaultTimeout != 60 || tf.MultiModelServer {
		t.Errorf("tensorflow = %+v", tf)
	}
	if sk := rt["sklearn"]; sk == nil || sk.Image != "" || sk.V1 == nil || sk.V2 == nil ||
		sk.V1.Image != "gcr.io/kfserving/sklearnserver" || !sk.V1.MultiModelServer ||
		sk.V2.Image != "docker.io/seldonio/mlserver" || sk.V2.DefaultImageVersion != "0.2.1" {
		t.Errorf("sklearn = %+v (v1 %+v, v2 %+v)", sk, sk.V1, sk.V2)
	}
	if pt := rt["pytorch"]; pt == nil || pt.V2 == nil || pt.V2.DefaultGPUImageVersion != "0.4.0-gpu" {
		t.Errorf("pytorch = %+v", pt)
	}
	if tr := rt["triton"]; tr == nil || !slices.Equal(tr.SupportedFrameworks, []string{"tensorrt", "tensorflow", "onnx", "pytorch", "caffe2"}) || !tr.MultiModelServer {
		t.Errorf("triton = %+v", tr)
	}

	for _, tc := range []struct {
		name, json string
		check      func(Runtimes) bool
	}{
		{"timeout as a number", `{"tensorflow": {"image": "tf", "defaultTimeout": 30}}`,
			func(rt Runtimes) bool { return rt["tensorflow"].DefaultTimeout == 30 }},
		{"timeout empty", `{"tensorflow": {"image": "tf", "defaultTimeout": ""}}`,
			func(rt Runtimes) bool { return rt["tensorflow"].DefaultTimeout == 0 }},
		{"server named", `{"my-tf": {"image": "example/tf", "server": "tfserving"}}`,
			func(rt Runtimes) bool { return rt["my-tf"].Server == ServerTFServing }},
		{"only v2", `{"xgboost": {"v2": {"image": "mlserver"}}}`,
			func(rt Runtimes) bool { return rt["xgboost"].V1 == nil && rt["xgboost"].V2.Image == "mlserver" }},
		{"empty", `{}`, func(rt Runtimes) bool { return rt != nil && len(rt) == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := ParseRuntimes([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(rt) {
				t.Errorf("ParseRuntimes(%s) = %+v", tc.json, rt)
			}
		})
	}
}

func TestParseRuntimesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       []string // all in the error
	}{
		{"unknown field", `{"tensorflow": {"image": "tf", "imageTag": "1"}}`, []string{"runtimes", "unknown field", "imageTag"}},
		{"unknown field in v1", `{"sklearn": {"v1": {"image": "sk", "gpu": true}}}`, []string{"unknown field", "gpu"}},
		{"missing image", `{"tensorflow": {"defaultImageVersion": "1.14.0"}}`, []string{"tensorflow", "no image"}},
		{"missing image in v2", `{"sklearn": {"v1": {"image": "sk"}, "v2": {"defaultImageVersion": "0.2.1"}}}`, []string{"sklearn.v2", "no image"}},
		{"bad server", `{"tgi": {"image": "hf/tgi", "server": "tgi"}}`, []string{"tgi", `server "tgi"`, "tfserving", "kserve"}},
		{"bad server in v1", `{"pytorch": {"v1": {"image": "pt", "server": "python"}}}`, []string{"pytorch.v1", `"python"`}},
		{"null entry", `{"tensorflow": null}`, []string{"tensorflow", "empty entry"}},
		{"timeout not a number", `{"tensorflow": {"image": "tf", "defaultTimeout": "sixty"}}`, []string{"sixty", "whole number"}},
		{"not an object", `["tensorflow"]`, []string{"runtimes"}},
		{"not JSON", `tensorflow: {image: tf}`, []string{"runtimes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, err := ParseRuntimes([]byte(tc.json))
			if err == nil {
				t.Fatalf("ParseRuntimes(%s) = %+v, want an error", tc.json, rt)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// runtimeCase is an InferenceService whose predictor runs in a runtime
// image, and the serving container KServe's controller makes for it: the
// image with its tag and the command line (command then args), as
// KFServing 0.5's predictor_{tfserving,triton,torchserve}.go build them
// (and their tests spell out).
type runtimeCase struct {
	name     string
	spec     string // the predictor, indented under spec.predictor
	runtimes string // "" for kserve05Predictors
	image    string
	argv     []string
}

func TestRuntimeDeployments(t *testing.T) {
	tfArgs := func(timeoutMS string) []string {
		return []string{"/usr/bin/tensorflow_model_server", "--port=9000", "--rest_api_port=8080",
			"--model_name=m", "--model_base_path=/mnt/models", "--rest_api_timeout_in_ms=" + timeoutMS}
	}
	tritonArgs := []string{"tritonserver", "--model-store=/mnt/models", "--grpc-port=9000", "--http-port=8080",
		"--allow-grpc=true", "--allow-http=true"}
	torchServeArgs := []string{"torchserve", "--start", "--model-store=/mnt/models/model-store",
		"--ts-config=/mnt/models/config/config.properties"}
	gpu := "      resources: {limits: {cpu: \"1\", memory: 2Gi, nvidia.com/gpu: \"1\"}}\n"

	for _, tc := range []runtimeCase{
		{name: "tensorflow", spec: "    tensorflow:\n      storageUri: gs://b/m\n",
			image: "tensorflow/serving:1.14.0", argv: tfArgs("60000")},
		{name: "tensorflow timeout", spec: "    timeout: 30\n    tensorflow:\n      storageUri: gs://b/m\n",
			image: "tensorflow/serving:1.14.0", argv: tfArgs("30000")},
		{name: "tensorflow runtimeVersion", spec: "    tensorflow:\n      storageUri: gs://b/m\n      runtimeVersion: 2.6.2\n",
			image: "tensorflow/serving:2.6.2", argv: tfArgs("60000")},
		{name: "tensorflow gpu", spec: "    tensorflow:\n      storageUri: gs://b/m\n" + gpu,
			image: "tensorflow/serving:1.14.0-gpu", argv: tfArgs("60000")},
		{name: "tensorflow gpu runtimeVersion", spec: "    tensorflow:\n      storageUri: gs://b/m\n      runtimeVersion: 2.6.2-gpu\n" + gpu,
			image: "tensorflow/serving:2.6.2-gpu", argv: tfArgs("60000")},
		{name: "tensorflow user args after", spec: "    tensorflow:\n      storageUri: gs://b/m\n      args: [--enable_batching]\n",
			image: "tensorflow/serving:1.14.0", argv: append(tfArgs("60000"), "--enable_batching")},
		{name: "tensorflow no default timeout", spec: "    tensorflow:\n      storageUri: gs://b/m\n",
			runtimes: `{"tensorflow": {"image": "tensorflow/serving", "defaultImageVersion": "2.6.2"}}`,
			image:    "tensorflow/serving:2.6.2", argv: tfArgs("")[:5]},
		{name: "triton", spec: "    triton:\n      storageUri: gs://b/m\n",
			image: "nvcr.io/nvidia/tritonserver:20.08-py3", argv: tritonArgs},
		// Triton's entry has no GPU tag: the default tag serves GPUs too.
		{name: "triton gpu", spec: "    triton:\n      storageUri: gs://b/m\n" + gpu,
			image: "nvcr.io/nvidia/tritonserver:20.08-py3", argv: tritonArgs},
		{name: "triton runtimeVersion", spec: "    triton:\n      storageUri: gs://b/m\n      runtimeVersion: 21.09-py3\n",
			image: "nvcr.io/nvidia/tritonserver:21.09-py3", argv: tritonArgs},
		// No tensorrt key: the entry whose supportedFrameworks lists it.
		{name: "tensorrt through triton", spec: "    model:\n      modelFormat: {name: tensorrt}\n      storageUri: gs://b/m\n",
			image: "nvcr.io/nvidia/tritonserver:20.08-py3", argv: tritonArgs},
		// KFServing 0.5 serves pytorch without modelClassName with the
		// "v2" entry (TorchServe) whatever the protocol: "v1" is the
		// Python server that modelClassName selects.
		{name: "pytorch", spec: "    pytorch:\n      storageUri: gs://b/m\n",
			image: "pytorch/torchserve-kfs:0.4.0", argv: torchServeArgs},
		{name: "pytorch gpu", spec: "    pytorch:\n      storageUri: gs://b/m\n" + gpu,
			image: "pytorch/torchserve-kfs:0.4.0-gpu", argv: torchServeArgs},
		{name: "pytorch runtimeVersion", spec: "    pytorch:\n      storageUri: gs://b/m\n      runtimeVersion: 0.5.0\n",
			image: "pytorch/torchserve-kfs:0.5.0", argv: torchServeArgs},
		{name: "pytorch plain entry", spec: "    pytorch:\n      storageUri: gs://b/m\n",
			runtimes: `{"pytorch": {"image": "kserve/torchserve-kfs", "defaultImageVersion": "0.8.0"}}`,
			image:    "kserve/torchserve-kfs:0.8.0", argv: torchServeArgs},
		{name: "model.runtime", spec: "    model:\n      modelFormat: {name: tensorflow}\n      runtime: tf-nightly\n      storageUri: gs://b/m\n",
			runtimes: `{"tensorflow": {"image": "tensorflow/serving", "defaultImageVersion": "1.14.0"},
			            "tf-nightly": {"image": "tensorflow/serving", "defaultImageVersion": "nightly", "server": "tfserving", "defaultTimeout": "5"}}`,
			image: "tensorflow/serving:nightly", argv: tfArgs("5000")},
		// A built-in format given an entry runs its image with the
		// arguments of KServe's Python servers.
		{name: "sklearn replaced", spec: "    sklearn:\n      storageUri: gs://b/m\n",
			image: "gcr.io/kfserving/sklearnserver:latest", argv: []string{"--model_name=m", "--model_dir=/mnt/models", "--http_port=8080"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := runtimeDeployment(t, tc)
			ps := d.Spec.Template.Spec
			if len(ps.Containers) != 1 {
				t.Fatalf("containers = %+v, want the runtime's alone", ps.Containers)
			}
			c := ps.Containers[0]
			if c.Name != "kserve-container" || c.Image != tc.image {
				t.Errorf("container %q image %q, want kserve-container running %q", c.Name, c.Image, tc.image)
			}
			if argv := append(slices.Clone(c.Command), c.Args...); !slices.Equal(argv, tc.argv) {
				t.Errorf("command line\n  %q\nwant\n  %q", argv, tc.argv)
			}
			// The model is pulled as for ferry serve: the storage
			// initializer fills /mnt/models, read-only in the runtime.
			if init := ps.InitContainers; len(init) != 1 || init[0].Name != StorageInitializerName ||
				init[0].Image != "ferry:test" || !slices.Equal(init[0].Args[:3], []string{"pull", "gs://b/m", "/mnt/models"}) {
				t.Errorf("init containers = %+v, want ferry pull gs://b/m /mnt/models", init)
			}
			if i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/mnt/models" }); i < 0 || !c.VolumeMounts[i].ReadOnly {
				t.Errorf("mounts = %+v, want /mnt/models read-only", c.VolumeMounts)
			}
			if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == 8080 }) || EntryPort(d) != 8080 {
				t.Errorf("ports = %+v, entry port %d: the Service sends HTTP to 8080", c.Ports, EntryPort(d))
			}
		})
	}
}

// runtimeDeployment builds revision 1 of the InferenceService "m" of tc
// with tc's runtimes.
func runtimeDeployment(t *testing.T, tc runtimeCase) *appsv1.Deployment {
	t.Helper()
	js := tc.runtimes
	if js == "" {
		js = kserve05Predictors
	}
	rt, err := ParseRuntimes([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	isvc := loadISVC(t, "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: m, namespace: models}\nspec:\n  predictor:\n"+tc.spec)
	d, err := BuildDeployment(isvc, "predictor", "m-predictor-00001", "h", 1,
		PodOptions{ServeImage: "ferry:test", Runtimes: rt, RuntimesRef: "kserve/inferenceservice-config"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRuntimeDeploymentErrors(t *testing.T) {
	rt, err := ParseRuntimes([]byte(`{"triton": {"image": "nvcr.io/nvidia/tritonserver", "defaultImageVersion": "20.08-py3"}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		spec     string
		runtimes Runtimes
		want     []string
	}{
		{"no ConfigMap", "    tensorflow: {storageUri: gs://b/m}\n", nil,
			[]string{`format "tensorflow"`, "--runtimes-configmap", `"tensorflow" entry`, `"predictors"`, "container"}},
		{"not in the ConfigMap", "    tensorflow: {storageUri: gs://b/m}\n", rt,
			[]string{`format "tensorflow"`, "kserve/inferenceservice-config has none", `"tensorflow" entry`}},
		{"paddle", "    paddle: {storageUri: gs://b/m}\n", nil,
			[]string{`format "paddle"`, "--runtimes-configmap"}},
		{"model.runtime missing", "    model:\n      modelFormat: {name: pytorch}\n      runtime: kserve-torchserve\n      storageUri: gs://b/m\n", rt,
			[]string{`"kserve-torchserve" entry that model.runtime names`, "kserve/inferenceservice-config"}},
		{"multi-model runtime", "    triton: {}\n", rt,
			[]string{"without a storageUri", `"triton" runtime`}},
		{"pytorch modelClassName", "    pytorch: {storageUri: gs://b/m, modelClassName: Net}\n",
			Runtimes{"pytorch": {Image: "pytorch/torchserve-kfs", DefaultImageVersion: "0.4.0"}},
			[]string{"modelClassName", "TorchServe"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isvc := loadISVC(t, "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: m, namespace: models}\nspec:\n  predictor:\n"+tc.spec)
			ref := ""
			if tc.runtimes != nil {
				ref = "kserve/inferenceservice-config"
			}
			d, err := BuildDeployment(isvc, "predictor", "m-predictor-00001", "h", 1,
				PodOptions{ServeImage: "ferry:test", Runtimes: tc.runtimes, RuntimesRef: ref})
			if err == nil {
				t.Fatalf("built %+v, want an error", d.Spec.Template.Spec.Containers)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestRuntimesLeaveBuiltinFormats: a runtimes ConfigMap without an entry
// for a built-in format leaves it to ferry serve.
func TestRuntimesLeaveBuiltinFormats(t *testing.T) {
	d := runtimeDeployment(t, runtimeCase{spec: "    xgboost:\n      storageUri: gs://b/m\n",
		runtimes: `{"tensorflow": {"image": "tensorflow/serving", "defaultImageVersion": "1.14.0"}}`})
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "ferry:test" || len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Errorf("container image %q args %q, want ferry serve", c.Image, c.Args)
	}
	checkArgs(t, c.Args, "--model-format", "xgboost", "--model-dir", "/mnt/models")
}
