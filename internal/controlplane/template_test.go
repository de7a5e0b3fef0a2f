package controlplane

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/server"
	"github.com/ferryserve/ferry/internal/supervisor"
)

// templateController builds templates only: no store, runner or router.
func templateController() *Controller {
	return NewController(Config{FerryBinary: "/opt/ferry", DataDir: "/data", ServeArgs: []string{"--storage-timeout", "1m"},
		ReplicaEnv: []string{"AWS_REGION=eu-west-1"}, PredictorAddr: "127.0.0.1:7000"})
}

// loadService decodes, defaults and validates one InferenceService.
func loadService(t *testing.T, spec string) *api.InferenceService {
	t.Helper()
	objs, err := api.Load([]byte("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: m\n  namespace: ns\nspec:\n" + spec))
	if err != nil {
		t.Fatal(err)
	}
	return objs[0].(*api.InferenceService)
}

// componentRevision is a revision of comp holding its spec as stored.
func componentRevision(t *testing.T, isvc *api.InferenceService, comp string) Revision {
	t.Helper()
	var spec any
	switch comp {
	case api.ComponentPredictor:
		spec = isvc.Spec.Predictor
	case api.ComponentTransformer:
		spec = isvc.Spec.Transformer
	case api.ComponentExplainer:
		spec = isvc.Spec.Explainer
	}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return Revision{Name: isvc.Metadata.Name + "-" + comp + "-00001", Component: comp, Number: 1, Spec: b}
}

// argAfter returns the value following flag in args, and whether flag is
// there.
func argAfter(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", i >= 0
	}
	return args[i+1], true
}

// TestServeTemplateFlags: built-in formats run as `ferry serve` with the
// flags their spec asks for, probed on the assigned port.
func TestServeTemplateFlags(t *testing.T) {
	c := templateController()
	for _, tc := range []struct {
		name string
		spec string
		// raw, if set, is the stored revision's spec as written, without
		// the defaults loading adds.
		raw string
		// want maps a flag to its value; "" only checks the flag is there.
		want   map[string]string
		absent []string
	}{
		{
			name: "sklearn single model",
			spec: "  predictor:\n    sklearn:\n      storageUri: gs://b/iris\n",
			want: map[string]string{"--model-format": "sklearn", "--model-uri": "gs://b/iris", "--model-name": "m",
				"--http-port": "9000", "--grpc-port": "9001", "--inference-service": "m", "--namespace": "ns", "--component": "predictor",
				"--storage-timeout": "1m", "--host": "127.0.0.1"},
			absent: []string{"--models-config", "--log-url", "--enable-batcher"},
		},
		{
			name: "xgboost with logger and batcher",
			spec: "  predictor:\n    logger:\n      mode: request\n      url: http://sink.local/events\n      metadataHeaders: [X-Tenant, X-Trace]\n" +
				"    batcher:\n      maxBatchSize: 32\n      maxLatency: 500\n    xgboost:\n      storageUri: gs://b/xgb\n",
			want: map[string]string{"--model-format": "xgboost", "--model-uri": "gs://b/xgb",
				"--log-url": "http://sink.local/events", "--log-mode": "request", "--log-spool-dir": "/data/spool/ns-m-9000",
				"--log-metadata-headers": "X-Tenant,X-Trace", "--enable-batcher": "", "--max-batchsize": "32", "--max-latency": "500ms"},
			absent: []string{"--models-config"},
		},
		{
			name:   "batcher and logger defaulted",
			spec:   "  predictor:\n    logger:\n      url: http://sink.local/\n    batcher: {}\n    lightgbm:\n      storageUri: gs://b/lgb\n",
			want:   map[string]string{"--model-format": "lightgbm", "--enable-batcher": "", "--max-batchsize": "32", "--max-latency": "5000ms", "--log-url": "http://sink.local/", "--log-mode": "all"},
			absent: []string{"--log-metadata-headers"},
		},
		{
			name:   "batcher without sizes",
			spec:   "  predictor:\n    lightgbm:\n      storageUri: gs://b/lgb\n",
			raw:    `{"lightgbm":{"storageUri":"gs://b/lgb"},"batcher":{}}`,
			want:   map[string]string{"--model-format": "lightgbm", "--enable-batcher": ""},
			absent: []string{"--max-batchsize", "--max-latency", "--log-url"},
		},
		{
			name: "multi-model server",
			spec: "  predictor:\n    sklearn:\n      protocolVersion: v1\n",
			want: map[string]string{"--model-format": "sklearn", "--models-config": "/data/modelconfig/ns/m.json",
				"--puller-state-dir": "/data/modelconfig/ns/m.json.state-9000"},
			absent: []string{"--model-uri", "--model-name"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			isvc := loadService(t, tc.spec)
			rev := componentRevision(t, isvc, api.ComponentPredictor)
			if tc.raw != "" {
				rev.Spec = json.RawMessage(tc.raw)
			}
			tmpl, err := c.template(t.Context(), isvc, api.ComponentPredictor, rev)
			if err != nil {
				t.Fatal(err)
			}
			pc := tmpl(9000, 9001)
			if pc.Command != "/opt/ferry" || len(pc.Args) == 0 || pc.Args[0] != "serve" {
				t.Fatalf("command %s %v, want /opt/ferry serve …", pc.Command, pc.Args)
			}
			for flag, want := range tc.want {
				got, ok := argAfter(pc.Args, flag)
				if !ok || (want != "" && got != want) {
					t.Errorf("%s = %q (present %v), want %q; args %v", flag, got, ok, want, pc.Args)
				}
			}
			for _, flag := range tc.absent {
				if slices.Contains(pc.Args, flag) {
					t.Errorf("%s given: %v", flag, pc.Args)
				}
			}
			if !slices.Equal(pc.Env, []string{"AWS_REGION=eu-west-1"}) {
				t.Errorf("env %v", pc.Env)
			}
			id, ok := argAfter(pc.Args, "--replica-id")
			if !ok || len(id) != 16 {
				t.Errorf("--replica-id %q (present %v)", id, ok)
			}
			wantReady := &supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/v2/health/ready", Port: 9000, Header: server.HeaderReplicaID, Value: id}, Period: 2 * time.Second, FailureThreshold: 3}
			if !reflect.DeepEqual(pc.Readiness, wantReady) {
				t.Errorf("readiness %+v", pc.Readiness)
			}
			if l := pc.Liveness; l == nil || l.HTTPGet == nil || l.HTTPGet.Path != "/v2/health/live" || l.HTTPGet.Port != 9000 || l.HTTPGet.Value != id {
				t.Errorf("liveness %+v", l)
			}
			if pc.RestartAfterNotReady != 10*time.Second {
				t.Errorf("restartAfterNotReady %v", pc.RestartAfterNotReady)
			}
			// Each replica gets its own ports (and spool): nothing is shared
			// between calls of the template.
			other := tmpl(9100, 9101)
			if p, _ := argAfter(other.Args, "--http-port"); p != "9100" {
				t.Errorf("second replica's --http-port %s", p)
			}
			if p, _ := argAfter(pc.Args, "--http-port"); p != "9000" {
				t.Errorf("the first replica's args changed under it: --http-port %s", p)
			}
		})
	}
}

// TestContainerTemplate: a custom container runs its command with the
// ports in its environment; transformers and explainers get KServe's
// extra flags; declared ports in probes become the replica's port.
func TestContainerTemplate(t *testing.T) {
	c := templateController()
	isvc := loadService(t, `  predictor:
    containers:
    - name: kserve-container
      image: ignored
      command: [my-server, --workers, "2"]
      args: [--verbose]
      workingDir: /srv
      env:
      - {name: MODEL, value: iris}
      ports:
      - {containerPort: 9090, name: http1}
      readinessProbe:
        httpGet: {path: /ready, port: 9090}
        periodSeconds: 5
        failureThreshold: 4
      livenessProbe:
        tcpSocket: {port: 7777}
  transformer:
    containers:
    - name: kserve-container
      command: [python, -m, transformer]
  explainer:
    containers:
    - name: kserve-container
      command: [python, -m, explainer]
      readinessProbe:
        exec: {command: [cat, /tmp/ready]}
`)
	pred, err := c.template(t.Context(), isvc, api.ComponentPredictor, componentRevision(t, isvc, api.ComponentPredictor))
	if err != nil {
		t.Fatal(err)
	}
	pc := pred(9000, 9001)
	if pc.Command != "my-server" || !slices.Equal(pc.Args, []string{"--workers", "2", "--verbose"}) || pc.Dir != "/srv" {
		t.Fatalf("predictor process %s %v in %q", pc.Command, pc.Args, pc.Dir)
	}
	wantEnv := []string{"PORT=9000", "HTTP_PORT=9000", "GRPC_PORT=9001", "K_SERVICE=m-predictor", "PREDICTOR_HOST=127.0.0.1:7000", "MODEL=iris"}
	if !slices.Equal(pc.Env, wantEnv) {
		t.Fatalf("predictor env %v, want %v", pc.Env, wantEnv)
	}
	if want := (&supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/ready", Port: 9000}, Period: 5 * time.Second, FailureThreshold: 4}); !reflect.DeepEqual(pc.Readiness, want) {
		t.Fatalf("readiness %+v, want the declared port mapped to 9000", pc.Readiness)
	}
	if pc.Liveness == nil || pc.Liveness.TCP == nil || pc.Liveness.TCP.Port != 7777 {
		t.Fatalf("liveness %+v, want TCP 7777 (an undeclared port is kept)", pc.Liveness)
	}

	for _, comp := range []string{api.ComponentTransformer, api.ComponentExplainer} {
		tmpl, err := c.template(t.Context(), isvc, comp, componentRevision(t, isvc, comp))
		if err != nil {
			t.Fatalf("%s: %v", comp, err)
		}
		pc := tmpl(9200, 9201)
		if pc.Command != "python" || !slices.Equal(pc.Args, []string{"-m", comp, "--model_name", "m", "--predictor_host", "127.0.0.1:7000", "--http_port", "9200"}) {
			t.Errorf("%s process %s %v", comp, pc.Command, pc.Args)
		}
		if !slices.Contains(pc.Env, "K_SERVICE=m-"+comp) {
			t.Errorf("%s env %v", comp, pc.Env)
		}
		if pc.Liveness != nil {
			t.Errorf("%s liveness %+v without a livenessProbe", comp, pc.Liveness)
		}
		switch comp {
		case api.ComponentTransformer: // no readinessProbe: TCP on its port
			if want := (&supervisor.Probe{TCP: &supervisor.TCPAction{Port: 9200}, Period: 2 * time.Second}); !reflect.DeepEqual(pc.Readiness, want) {
				t.Errorf("transformer readiness %+v", pc.Readiness)
			}
		case api.ComponentExplainer:
			if pc.Readiness == nil || !slices.Equal(pc.Readiness.Exec, []string{"cat", "/tmp/ready"}) {
				t.Errorf("explainer readiness %+v", pc.Readiness)
			}
		}
	}
}

// TestTemplateRefusals: what cannot run as a local process is refused
// with a reason.
func TestTemplateRefusals(t *testing.T) {
	c := templateController()
	isvc := loadService(t, "  predictor:\n    sklearn:\n      storageUri: gs://b/m\n")
	for _, tc := range []struct {
		name, comp, spec, want string
	}{
		{"image only", "predictor", `{"containers":[{"name":"kserve-container","image":"repo/server:1"}]}`, "names only an image (repo/server:1)"},
		{"no command, no image", "predictor", `{"containers":[{"name":"c"}]}`, `container "c" has no command`},
		{"external server", "predictor", `{"tensorflow":{"storageUri":"gs://b/tf"}}`, `predictor "tensorflow" runs in its own server`},
		{"transformer without containers", "transformer", `{}`, "transformer has no container"},
		{"explainer without containers", "explainer", `{}`, "explainer has no container"},
		{"undecodable predictor", "predictor", `[`, ""},
		{"undecodable transformer", "transformer", `[`, ""},
		{"undecodable explainer", "explainer", `[`, ""},
		{"unknown component", "router", `{}`, `unknown component "router"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.template(t.Context(), isvc, tc.comp, Revision{Name: "m-x-00001", Spec: json.RawMessage(tc.spec)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestProbeMapping(t *testing.T) {
	declared := map[int]bool{8080: true, 9090: true}
	const hp = 40000
	for _, tc := range []struct {
		name string
		in   *api.Probe
		want *supervisor.Probe
	}{
		{"none", nil, nil},
		{"no action", &api.Probe{PeriodSeconds: 3}, nil},
		{"http on the default port", &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/h", Port: api.FromInt(8080)}},
			&supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/h", Port: hp}}},
		{"http on a declared port", &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/h", Port: api.FromInt(9090)}},
			&supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/h", Port: hp}}},
		{"http on a named port", &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/h", Port: api.FromString("http1")}},
			&supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/h", Port: hp}}},
		{"http without a port", &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/h"}},
			&supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/h", Port: hp}}},
		{"http on another port", &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/h", Port: api.FromInt(6000)}},
			&supervisor.Probe{HTTPGet: &supervisor.HTTPGetAction{Path: "/h", Port: 6000}}},
		{"tcp", &api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.FromInt(8080)}},
			&supervisor.Probe{TCP: &supervisor.TCPAction{Port: hp}}},
		{"exec", &api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}},
			&supervisor.Probe{Exec: []string{"true"}}},
		{"grpc is a TCP check on the replica's port", &api.Probe{GRPC: &api.GRPCAction{Port: 9000}},
			&supervisor.Probe{TCP: &supervisor.TCPAction{Port: hp}}},
		{"timings", &api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.FromInt(7)}, InitialDelaySeconds: 1, PeriodSeconds: 2, TimeoutSeconds: 3, SuccessThreshold: 4, FailureThreshold: 5},
			&supervisor.Probe{TCP: &supervisor.TCPAction{Port: 7}, InitialDelay: time.Second, Period: 2 * time.Second, Timeout: 3 * time.Second, SuccessThreshold: 4, FailureThreshold: 5}},
	} {
		if got := probe(tc.in, declared, hp); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestServesItself: only built-in formats run as ferry serve (and log
// inside their replicas); everything else gets the ingress's logger.
func TestServesItself(t *testing.T) {
	for _, tc := range []struct {
		name, spec, comp string
		want             bool
	}{
		{"sklearn predictor", "  predictor:\n    sklearn:\n      storageUri: gs://b/m\n", "predictor", true},
		{"onnx predictor", "  predictor:\n    onnx:\n      storageUri: gs://b/m\n", "predictor", true},
		{"generic model form", "  predictor:\n    model:\n      modelFormat: {name: xgboost}\n      storageUri: gs://b/m\n", "predictor", true},
		{"sklearn with its own command", "  predictor:\n    sklearn:\n      storageUri: gs://b/m\n      command: [my-sklearn]\n", "predictor", false},
		{"custom container", "  predictor:\n    containers:\n    - name: c\n      command: [srv]\n", "predictor", false},
		{"external server", "  predictor:\n    triton:\n      storageUri: gs://b/m\n", "predictor", false},
		{"transformer", "  predictor:\n    sklearn:\n      storageUri: gs://b/m\n  transformer:\n    containers:\n    - name: c\n      command: [t]\n", "transformer", false},
	} {
		if got := servesItself(loadService(t, tc.spec), tc.comp); got != tc.want {
			t.Errorf("%s: servesItself = %v, want %v", tc.name, got, tc.want)
		}
	}
}
