package operator_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/ferryserve/ferry/internal/cli"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// The install manifests and chart, relative to this package.
const (
	configDir = "../../config"
	chartDir  = "../../charts/ferry-operator"
	// installNS is where config/ and the chart's defaults install the operator.
	installNS = "ferry-system"
)

// manifest is one object of an install manifest.
type manifest struct {
	file string // where it came from, for messages
	obj  map[string]any
}

func (m manifest) kind() string { s, _ := m.obj["kind"].(string); return s }

func (m manifest) key() string {
	md, _ := m.obj["metadata"].(map[string]any)
	return fmt.Sprintf("%s %v/%v", m.kind(), md["namespace"], md["name"])
}

// kustomization is the part of kustomize's file format the install
// manifests use; UnmarshalStrict refuses any other field, so a
// kustomization that starts using, say, namePrefix fails here instead of
// being built wrongly by kustomizeBuild.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// kustomizeBuild does what `kustomize build dir` does for kustomizations
// that only list resources: the objects of every listed file, directories
// recursively, in order. visited collects the files read.
func kustomizeBuild(t *testing.T, dir string, visited map[string]bool) []manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v (this test builds kustomizations of resources only)", dir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" || len(k.Resources) == 0 {
		t.Fatalf("%s/kustomization.yaml: %s %s with %d resources", dir, k.APIVersion, k.Kind, len(k.Resources))
	}
	var out []manifest
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s/kustomization.yaml lists %s: %v", dir, r, err)
		}
		if st.IsDir() {
			out = append(out, kustomizeBuild(t, p, visited)...)
			continue
		}
		visited[filepath.Clean(p)] = true
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, splitManifests(t, p, b)...)
	}
	return out
}

// splitManifests reads the YAML documents of b, skipping empty ones.
func splitManifests(t *testing.T, file string, b []byte) []manifest {
	t.Helper()
	var out []manifest
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatalf("%s: %v\n%s", file, err, doc)
		}
		if len(obj) == 0 {
			continue
		}
		out = append(out, manifest{file: file, obj: obj})
	}
}

// strictDecoder decodes the kinds the install manifests hold into their Go
// types, refusing unknown and duplicate fields.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// checkManifests decodes every object strictly and checks that no two
// have the same kind, namespace and name.
func checkManifests(t *testing.T, ms []manifest) {
	t.Helper()
	dec := strictDecoder(t)
	seen := map[string]string{}
	for _, m := range ms {
		b, err := yaml.Marshal(m.obj)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := dec.Decode(b, nil, nil); err != nil {
			t.Errorf("%s: %s: %v", m.file, m.key(), err)
		}
		if prev, ok := seen[m.key()]; ok {
			t.Errorf("%s twice: %s and %s", m.key(), prev, m.file)
		}
		seen[m.key()] = m.file
	}
}

// TestKustomizeManifests builds config/default as kustomize would, checks
// every listed file exists and every object decodes strictly into its Go
// type, that no YAML file under config/ is left out, and that the objects
// the operator's code refers to by name are there. With a kustomize binary
// on PATH its build must give the same objects.
func TestKustomizeManifests(t *testing.T) {
	visited := map[string]bool{}
	ms := kustomizeBuild(t, filepath.Join(configDir, "default"), visited)
	checkManifests(t, ms)

	err := filepath.WalkDir(configDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") || d.Name() == "kustomization.yaml" {
			return err
		}
		if !visited[filepath.Clean(p)] {
			t.Errorf("%s is in no kustomization that config/default includes", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	keys := map[string]manifest{}
	for _, m := range ms {
		keys[m.key()] = m
	}
	for _, want := range []string{
		"Namespace <nil>/" + installNS,
		"ServiceAccount " + installNS + "/ferry-operator",
		"ClusterRole <nil>/ferry-operator",
		"ClusterRoleBinding <nil>/ferry-operator",
		"Role " + installNS + "/ferry-leader-election",
		"Role " + installNS + "/ferry-webhook-cert",
		"Deployment " + installNS + "/ferry-operator",
		"Service " + installNS + "/ferry-webhook-service",
		"ValidatingWebhookConfiguration <nil>/ferry-validating-webhook",
		"MutatingWebhookConfiguration <nil>/ferry-mutating-webhook",
		"CustomResourceDefinition <nil>/inferenceservices.serving.kserve.io",
		"CustomResourceDefinition <nil>/trainedmodels.serving.kubeflow.org",
	} {
		if _, ok := keys[want]; !ok {
			t.Errorf("config/default has no %s", want)
		}
	}
	checkWebhooks(t, ms)
	checkNoWildcards(t, ms)

	if kz, err := exec.LookPath("kustomize"); err == nil {
		out, err := exec.Command(kz, "build", filepath.Join(configDir, "default")).Output()
		if err != nil {
			t.Fatalf("kustomize build: %v", err)
		}
		sameObjects(t, "kustomize build", splitManifests(t, "kustomize build", out), "this test's build", ms, nil)
	} else {
		t.Log("no kustomize on PATH: config/default built by this test only")
	}
}

// checkWebhooks checks the names the operator and the webhook
// configurations must agree on: every webhook calls
// ferry-system/ferry-webhook-service on port 443 at its kind's path, with
// an empty caBundle for the operator to fill in, for both API groups.
func checkWebhooks(t *testing.T, ms []manifest) {
	t.Helper()
	paths := map[string]bool{}
	for _, m := range ms {
		kind := m.kind()
		if kind != "ValidatingWebhookConfiguration" && kind != "MutatingWebhookConfiguration" {
			continue
		}
		verb := "validate"
		if kind == "MutatingWebhookConfiguration" {
			verb = "mutate"
		}
		hooks, _ := m.obj["webhooks"].([]any)
		for _, h := range hooks {
			h := h.(map[string]any)
			cc := h["clientConfig"].(map[string]any)
			svc := cc["service"].(map[string]any)
			if svc["namespace"] != installNS || svc["name"] != "ferry-webhook-service" || svc["port"] != float64(443) {
				t.Errorf("%s: webhook %v calls %v", m.key(), h["name"], svc)
			}
			if cc["caBundle"] != "" {
				t.Errorf("%s: webhook %v has a caBundle in the manifest", m.key(), h["name"])
			}
			rules := h["rules"].([]any)
			r := rules[0].(map[string]any)
			res := r["resources"].([]any)[0].(string)
			if want := "/" + verb + "-" + strings.TrimSuffix(res, "s"); svc["path"] != want {
				t.Errorf("%s: webhook %v path %v, want %s", m.key(), h["name"], svc["path"], want)
			}
			if g := fmt.Sprint(r["apiGroups"]); g != "[serving.kserve.io serving.kubeflow.org]" {
				t.Errorf("%s: webhook %v groups %s", m.key(), h["name"], g)
			}
			paths[svc["path"].(string)] = true
		}
	}
	for _, p := range []string{"/validate-inferenceservice", "/mutate-inferenceservice", "/validate-trainedmodel", "/mutate-trainedmodel"} {
		if !paths[p] {
			t.Errorf("no webhook at %s", p)
		}
	}
}

// checkNoWildcards checks that no RBAC rule grants "*" (all groups,
// resources or verbs): each must name what the operator uses.
func checkNoWildcards(t *testing.T, ms []manifest) {
	t.Helper()
	for _, m := range ms {
		if k := m.kind(); k != "ClusterRole" && k != "Role" {
			continue
		}
		rules, _ := m.obj["rules"].([]any)
		if len(rules) == 0 {
			t.Errorf("%s has no rules", m.key())
		}
		for _, r := range rules {
			r := r.(map[string]any)
			for _, f := range []string{"apiGroups", "resources", "verbs", "resourceNames"} {
				l, _ := r[f].([]any)
				if slices.Contains(l, any("*")) {
					t.Errorf("%s: a rule's %s has *: %v", m.key(), f, r)
				}
			}
		}
	}
}

// sameObjects checks that two sets of objects are equal, object by
// object, after ignore removes what may differ.
func sameObjects(t *testing.T, aName string, a []manifest, bName string, b []manifest, ignore func(map[string]any)) {
	t.Helper()
	index := func(ms []manifest) map[string]map[string]any {
		out := map[string]map[string]any{}
		for _, m := range ms {
			o := deepCopy(t, m.obj)
			if ignore != nil {
				ignore(o)
			}
			out[m.key()] = o
		}
		return out
	}
	ia, ib := index(a), index(b)
	for _, k := range slices.Sorted(maps.Keys(ia)) {
		ob, ok := ib[k]
		if !ok {
			t.Errorf("%s has %s, %s has not", aName, k, bName)
			continue
		}
		if !reflect.DeepEqual(ia[k], ob) {
			ya, _ := yaml.Marshal(ia[k])
			yb, _ := yaml.Marshal(ob)
			t.Errorf("%s differs:\n%s:\n%s\n%s:\n%s", k, aName, ya, bName, yb)
		}
	}
	for k := range ib {
		if _, ok := ia[k]; !ok {
			t.Errorf("%s has %s, %s has not", bName, k, aName)
		}
	}
}

func deepCopy(t *testing.T, m map[string]any) map[string]any {
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// helmRender renders the chart as `helm template --namespace
// ferry-system` does, with values merged over values.yaml, for the
// functions the chart uses (include, toYaml, nindent, indent, quote,
// default and text/template's own); a function Helm has and this does not
// fails the parse, so the chart stays within what is checked here. A
// value the templates name that is missing fails too (Helm would print
// nothing). NOTES.txt is rendered and returned apart.
func helmRender(t *testing.T, values map[string]any) (ms []manifest, notes string) {
	t.Helper()
	var chart struct {
		Name, Version, AppVersion string
	}
	readYAML(t, filepath.Join(chartDir, "Chart.yaml"), &chart)
	var vals map[string]any
	readYAML(t, filepath.Join(chartDir, "values.yaml"), &vals)
	mergeValues(vals, values)

	tpl := template.New("chart").Option("missingkey=error")
	tpl.Funcs(template.FuncMap{
		"include": func(name string, data any) (string, error) {
			var b strings.Builder
			err := tpl.ExecuteTemplate(&b, name, data)
			return b.String(), err
		},
		"toYaml": func(v any) (string, error) {
			b, err := yaml.Marshal(v)
			return strings.TrimSuffix(string(b), "\n"), err
		},
		"indent":  indent,
		"nindent": func(n int, s string) string { return "\n" + indent(n, s) },
		"quote": func(vs ...any) string {
			var out []string
			for _, v := range vs {
				if v != nil {
					out = append(out, fmt.Sprintf("%q", fmt.Sprint(v)))
				}
			}
			return strings.Join(out, " ")
		},
		"default": func(d any, given ...any) any {
			if len(given) == 0 || isEmpty(given[0]) {
				return d
			}
			return given[0]
		},
	})
	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("chart templates: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tpl.New(filepath.Base(f)).Parse(string(b)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	data := map[string]any{
		"Values":  vals,
		"Release": map[string]any{"Name": "ferry", "Namespace": installNS, "Service": "Helm"},
		"Chart":   map[string]any{"Name": chart.Name, "Version": chart.Version, "AppVersion": chart.AppVersion},
	}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "_") {
			continue
		}
		var b bytes.Buffer
		if err := tpl.ExecuteTemplate(&b, name, data); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if name == "NOTES.txt" {
			notes = b.String()
			continue
		}
		ms = append(ms, splitManifests(t, f, b.Bytes())...)
	}
	return ms, notes
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// mergeValues sets over's values into base, maps merged key by key, as
// Helm's --set and -f do.
func mergeValues(base, over map[string]any) {
	for k, v := range over {
		if vm, ok := v.(map[string]any); ok {
			if bm, ok := base[k].(map[string]any); ok {
				mergeValues(bm, vm)
				continue
			}
		}
		base[k] = v
	}
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// isEmpty is Helm's notion of empty for default.
func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Array, reflect.String:
		return rv.Len() == 0
	case reflect.Bool:
		return !rv.Bool()
	case reflect.Int, reflect.Int64, reflect.Float64:
		return rv.IsZero()
	}
	return false
}

// chartOnlyLabels are the labels the chart adds to config/'s.
var chartOnlyLabels = []string{"app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"}

func dropChartLabels(o map[string]any) {
	for _, path := range [][]string{{"metadata"}, {"spec", "template", "metadata"}} {
		m := o
		for _, p := range path {
			m, _ = m[p].(map[string]any)
		}
		if labels, ok := m["labels"].(map[string]any); ok {
			for _, l := range chartOnlyLabels {
				delete(labels, l)
			}
		}
	}
}

// TestHelmChart renders the chart with its defaults and with other values,
// decodes every object strictly, and checks that the defaults install
// exactly config/default (less the Namespace, which `helm install
// --create-namespace` makes) and that crds/ is config/crd. With a helm
// binary on PATH (or FERRY_HELM), `helm lint` must pass and `helm
// template` must render what this test renders.
func TestHelmChart(t *testing.T) {
	ms, notes := helmRender(t, nil)
	checkManifests(t, ms)
	if !strings.Contains(notes, "ferry:dev") {
		t.Errorf("NOTES.txt renders as %q", notes)
	}
	var kust []manifest
	for _, m := range kustomizeBuild(t, filepath.Join(configDir, "default"), map[string]bool{}) {
		if k := m.kind(); k != "Namespace" && k != "CustomResourceDefinition" {
			kust = append(kust, m)
		}
	}
	sameObjects(t, "the chart", ms, "config/default", kust, dropChartLabels)

	crds, err := filepath.Glob(filepath.Join(configDir, "crd", "*_*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("config/crd: %v", err)
	}
	chartCRDs, _ := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if len(chartCRDs) != len(crds) {
		t.Errorf("chart crds/ has %d files, config/crd %d", len(chartCRDs), len(crds))
	}
	for _, f := range crds {
		a, _ := os.ReadFile(f)
		b, err := os.ReadFile(filepath.Join(chartDir, "crds", filepath.Base(f)))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("chart crds/%s is not config/crd's (%v): cp config/crd/*_*.yaml charts/ferry-operator/crds/", filepath.Base(f), err)
		}
	}

	// Other values: each optional flag, extra arguments, no webhooks, and
	// scheduling constraints.
	other := map[string]any{
		"image":          map[string]any{"repository": "registry.example/ferry", "tag": "v9"},
		"ingressDomain":  "models.example.com",
		"gateway":        "gw/public",
		"watchNamespace": "team-a",
		"logLevel":       "debug",
		"extraArgs":      []any{"--max-concurrent-reconciles=8"},
		"webhook":        map[string]any{"enabled": false},
		"nodeSelector":   map[string]any{"kubernetes.io/os": "linux"},
		"tolerations":    []any{map[string]any{"key": "dedicated", "operator": "Exists"}},
	}
	ms, _ = helmRender(t, other)
	checkManifests(t, ms)
	var args []string
	for _, m := range ms {
		switch m.kind() {
		case "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
			t.Errorf("webhook.enabled=false renders %s", m.key())
		case "Deployment":
			c := m.obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			if c["image"] != "registry.example/ferry:v9" {
				t.Errorf("image = %v", c["image"])
			}
			for _, a := range c["args"].([]any) {
				args = append(args, a.(string))
			}
		}
	}
	for _, want := range []string{"--serve-image=registry.example/ferry:v9", "--ingress-domain=models.example.com", "--gateway=gw/public",
		"--namespace=team-a", "--log-level=debug", "--max-concurrent-reconciles=8"} {
		if !slices.Contains(args, want) {
			t.Errorf("args %q lack %s", args, want)
		}
	}

	helm := os.Getenv("FERRY_HELM")
	if helm == "" {
		helm, _ = exec.LookPath("helm")
	}
	if helm == "" {
		t.Log("no helm on PATH (or FERRY_HELM): chart rendered by this test only")
		return
	}
	if out, err := exec.Command(helm, "lint", "--strict", chartDir).CombinedOutput(); err != nil {
		t.Errorf("helm lint: %v\n%s", err, out)
	}
	out, err := exec.Command(helm, "template", "ferry", chartDir, "--namespace", installNS).Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	ours, _ := helmRender(t, nil)
	sameObjects(t, "helm template", splitManifests(t, "helm template", out), "this test's rendering", ours, nil)
}

// TestDockerfileBuild checks that the Dockerfile builds ferry as `make
// build` does (no image can be built here: no container runtime or
// registry): the same environment, flags, ldflags with the version and
// package, and that the image holds that binary alone as its entrypoint.
func TestDockerfileBuild(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ldflags := regexp.MustCompile(`(?m)^LDFLAGS\s*:?=\s*(.+)$`).FindSubmatch(mk)
	recipe := regexp.MustCompile(`(?m)^build:.*\n\t(.+)$`).FindSubmatch(mk)
	if ldflags == nil || recipe == nil {
		t.Fatal("Makefile: no LDFLAGS or build recipe")
	}
	// The Makefile's command with its variables expanded; the version is
	// $(VERSION) in one and ${VERSION} in the other.
	want := strings.NewReplacer("$(GO)", "go", "'$(LDFLAGS)'", `"`+string(ldflags[1])+`"`, "$(BIN)", "BIN").Replace(string(recipe[1]))
	want = strings.ReplaceAll(want, "$(VERSION)", "VERSION")
	run := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .+)$`).FindSubmatch(df)
	if run == nil {
		t.Fatal("Dockerfile: no RUN CGO_ENABLED=0 go build line")
	}
	got := strings.NewReplacer("${VERSION}", "VERSION", "/out/ferry", "BIN").Replace(string(run[1]))
	if got != want {
		t.Errorf("Dockerfile builds with\n  %s\nthe Makefile with\n  %s", got, want)
	}
	for _, re := range []string{
		`(?m)^COPY --from=build /out/ferry /ferry$`,
		`(?m)^USER 65532:65532$`,
		`(?m)^ENTRYPOINT \["/ferry"\]$`,
		`(?m)^EXPOSE 8080 8081 9443$`,
	} {
		if !regexp.MustCompile(re).Match(df) {
			t.Errorf("Dockerfile has no line matching %s", re)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^FROM `).FindAll(df, -1)); n != 2 {
		t.Errorf("Dockerfile has %d stages, want build and runtime", n)
	}
}

// TestManifestArgsAreFlags runs the operator's arguments from config/
// and from the chart (default and other values) through `ferry operator`'s
// own flag parsing, so a manifest cannot name a flag the binary lacks or
// give one a value it refuses.
func TestManifestArgsAreFlags(t *testing.T) {
	sets := map[string][]manifest{
		"config/default": kustomizeBuild(t, filepath.Join(configDir, "default"), map[string]bool{}),
	}
	sets["chart"], _ = helmRender(t, nil)
	sets["chart without webhooks"], _ = helmRender(t, map[string]any{"webhook": map[string]any{"enabled": false},
		"extraArgs": []any{"--max-concurrent-reconciles=8"}})
	for name, ms := range sets {
		var args []string
		for _, m := range ms {
			if m.kind() != "Deployment" {
				continue
			}
			c := m.obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
			for _, a := range c["args"].([]any) {
				args = append(args, a.(string))
			}
		}
		if len(args) == 0 || args[0] != "operator" {
			t.Errorf("%s: operator args %q do not start with operator", name, args)
			continue
		}
		var out bytes.Buffer
		if rc := cli.Main(t.Context(), append(args, "--help"), &out, &out); rc != 0 {
			t.Errorf("%s: ferry %s refused (exit %d):\n%s", name, strings.Join(args, " "), rc, out.String())
		}
	}
}
