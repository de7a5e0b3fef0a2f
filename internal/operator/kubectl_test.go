package operator_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/operator"
	"github.com/ferryserve/ferry/internal/operator/kubetest"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

var updateKubectl = flag.Bool("update-kubectl", false, "rewrite testdata/kubectl from what the operator writes")

// kubectlSample is one KServe sample file, filtered to the objects the
// CRDs serve, applied into a namespace of its own.
type kubectlSample struct {
	file, ns string
	docs     [][]byte
	isvcs    []string // InferenceService names, with their group
	// refused are the documents api cannot decode (a field KServe's
	// types do not have either): kubectl apply must refuse them too.
	refused [][]byte
}

// TestKubectlSamples applies every KServe sample the CRDs serve with a
// real kubectl, as a user would: `kubectl apply` validates fields
// strictly on the server, so a sample field the generated schema lacks
// fails here. Each sample gets its own namespace (their names repeat).
// Once the operator has reconciled them, what it wrote for each sample
// (Deployments, Services, HPAs, Ingresses, the InferenceServices'
// conditions) is compared with testdata/kubectl/<sample>.yaml, and
// `kubectl get isvc` prints KServe's columns. KFServing's
// serving.kubeflow.org/v1alpha2 samples go through the operator's
// conversion webhook (on loopback) and are compared at v1beta1.
func TestKubectlSamples(t *testing.T) {
	_, cl, samples, run := applyKubectlSamples(t, kubetest.Options{CRDDirs: []string{"../../config/crd"}})

	// Reconciled: every InferenceService reports the generation it was
	// planned from.
	for _, s := range samples {
		for _, key := range s.isvcs {
			group, name, _ := strings.Cut(key, "/")
			gvk := operator.InferenceServiceGVK
			gvk.Group = group
			poll(t, s.ns+"/"+name+" reconciled", func() (bool, error) {
				u := &unstructured.Unstructured{}
				u.SetGroupVersionKind(gvk)
				if err := cl.Get(t.Context(), client.ObjectKey{Namespace: s.ns, Name: name}, u); err != nil {
					return false, err
				}
				og, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
				return og == u.GetGeneration(), nil
			})
		}
	}
	// Revisions, HPAs and Services follow within a pass; give the last
	// writes of each reconcile a moment to land before reading them.
	time.Sleep(time.Second)

	for _, s := range samples {
		got := kubectlSummary(t, cl, s)
		golden := filepath.Join("testdata", "kubectl", strings.TrimSuffix(s.file, ".yaml")+".yaml")
		if *updateKubectl {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Errorf("%v (run: go test ./internal/operator -run TestKubectlSamples -update-kubectl)", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the operator wrote\n%s\nwant (%s)\n%s", s.file, got, golden, want)
		}
	}

	out, err := run("get", "isvc", "-A")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	// KServe's printer columns; the two revision columns have priority 1
	// (only -o wide shows them).
	if head := strings.Fields(lines[0]); !slices.Equal(head, []string{"NAMESPACE", "NAME", "URL", "READY", "PREV", "LATEST", "AGE"}) {
		t.Errorf("kubectl get isvc columns = %q", head)
	}
	n := 0
	for _, s := range samples {
		for _, k := range s.isvcs {
			if strings.HasPrefix(k, api.GroupKServe+"/") {
				n++
			}
		}
	}
	if len(lines)-1 != n {
		t.Errorf("kubectl get isvc -A lists %d services, want %d:\n%s", len(lines)-1, n, out)
	}
}

// applyKubectlSamples starts a cluster with opts and the operator (its
// conversion webhook on loopback), and applies every KServe sample the
// CRDs serve with a real kubectl, one namespace per sample; documents
// Ferry's decoder refuses must be refused by kubectl too. It skips t
// without kubectl, and returns the cluster, a client, the samples and a
// function that runs kubectl against the cluster.
func applyKubectlSamples(t *testing.T, opts kubetest.Options) (*kubetest.Cluster, client.Client, []kubectlSample, func(args ...string) ([]byte, error)) {
	t.Helper()
	kubectl := filepath.Join(kubetest.AssetsDir(), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl in %s: run scripts/kube-test-cluster.sh", kubetest.AssetsDir())
	}
	cluster := kubetest.Start(t, opts)
	cl := newClient(t, cluster)
	startOperator(t, cluster, serveConversionOnLoopback(t, cl))
	waitConversionCA(t, cl)

	samples := loadKubectlSamples(t)
	dir := t.TempDir()
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(t.Context(), kubectl, append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out, nil
	}

	// Apply, four kubectl processes at a time.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	errs := make([]error, len(samples))
	for i, s := range samples {
		f := filepath.Join(dir, s.ns+".yaml")
		doc := append([]byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+s.ns+"\n"), bytes.Join(append([][]byte{nil}, s.docs...), []byte("\n---\n"))...)
		if err := os.WriteFile(f, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, errs[i] = run("apply", "-n", s.ns, "-f", f)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s: %v", samples[i].file, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, s := range samples {
		for j, doc := range s.refused {
			f := filepath.Join(dir, fmt.Sprintf("%s-refused-%d.yaml", s.ns, j))
			if err := os.WriteFile(f, doc, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := run("apply", "-n", s.ns, "-f", f); err == nil {
				t.Errorf("%s: kubectl apply accepted a document ferry apply cannot decode:\n%s", s.file, doc)
			}
		}
	}
	return cluster, cl, samples, run
}

// loadKubectlSamples reads the KServe samples and keeps the documents the
// CRDs serve: InferenceServices v1beta1 and TrainedModels v1alpha1 of
// both groups, InferenceServices v1alpha2 of serving.kubeflow.org,
// InferenceGraphs v1alpha1 of serving.kserve.io.
func loadKubectlSamples(t *testing.T) []kubectlSample {
	t.Helper()
	files, err := filepath.Glob("../api/testdata/kserve-samples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var out []kubectlSample
	alpha2 := 0 // samples with v1alpha2 documents
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s := kubectlSample{file: filepath.Base(f)}
		v1alpha2 := false
		for _, doc := range bytes.Split(b, []byte("\n---")) {
			var ty struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if yaml.Unmarshal(doc, &ty) != nil {
				continue
			}
			group, version, _ := strings.Cut(ty.APIVersion, "/")
			switch {
			case ty.Kind == api.KindInferenceService && version == api.VersionInferenceService && (group == api.GroupKServe || group == api.GroupKubeflow),
				ty.Kind == api.KindInferenceService && version == api.VersionV1alpha2 && group == api.GroupKubeflow:
				s.isvcs = append(s.isvcs, group+"/"+ty.Metadata.Name)
				v1alpha2 = v1alpha2 || version == api.VersionV1alpha2
			case ty.Kind == api.KindTrainedModel && version == api.VersionTrainedModel && (group == api.GroupKServe || group == api.GroupKubeflow):
			case ty.Kind == "InferenceGraph" && ty.APIVersion == "serving.kserve.io/v1alpha1":
			default:
				continue
			}
			// The namespace is the sample's own (several name one).
			var obj map[string]any
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				t.Fatal(err)
			}
			if md, ok := obj["metadata"].(map[string]any); ok {
				delete(md, "namespace")
			}
			clean, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := api.Decode(clean); err != nil {
				s.refused = append(s.refused, clean)
				if n := len(s.isvcs); n > 0 && strings.HasSuffix(s.isvcs[n-1], "/"+ty.Metadata.Name) {
					s.isvcs = s.isvcs[:n-1]
				}
				continue
			}
			s.docs = append(s.docs, clean)
		}
		if len(s.docs)+len(s.refused) > 0 {
			// Namespaces are numbered apart for samples with v1alpha2
			// documents, so that adding them renamed no other's.
			if v1alpha2 {
				alpha2++
				s.ns = fmt.Sprintf("v1alpha2-%03d", alpha2-1)
			} else {
				s.ns = fmt.Sprintf("sample-%03d", len(out)-alpha2)
			}
			out = append(out, s)
		}
	}
	if len(out) < 50 {
		t.Fatalf("only %d samples with served objects", len(out))
	}
	return out
}

// kubectlSummary renders, in a stable order, what the operator wrote in
// the sample's namespace: the parts of each object it decides (not the
// API server's defaults or generated fields), and each InferenceService's
// conditions.
func kubectlSummary(t *testing.T, cl client.Client, s kubectlSample) []byte {
	t.Helper()
	ctx := t.Context()
	in := client.InNamespace(s.ns)
	var doc []any
	for _, key := range s.isvcs {
		group, name, _ := strings.Cut(key, "/")
		gvk := operator.InferenceServiceGVK
		gvk.Group = group
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		if err := cl.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: name}, u); err != nil {
			t.Fatal(err)
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		var cs []string
		for _, c := range conds {
			m := c.(map[string]any)
			line := fmt.Sprintf("%v=%v", m["type"], m["status"])
			if r, _ := m["reason"].(string); r != "" {
				line += " (" + r + ")"
			}
			cs = append(cs, line)
		}
		slices.Sort(cs)
		doc = append(doc, map[string]any{"inferenceService": key, "conditions": cs})
	}
	var deps appsv1.DeploymentList
	var svcs corev1.ServiceList
	var hpas autoscalingv2.HorizontalPodAutoscalerList
	var ings networkingv1.IngressList
	for _, l := range []client.ObjectList{&deps, &svcs, &hpas, &ings} {
		if err := cl.List(ctx, l, in); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(deps.Items, func(a, b appsv1.Deployment) int { return strings.Compare(a.Name, b.Name) })
	for _, d := range deps.Items {
		p := d.Spec.Template.Spec
		doc = append(doc, map[string]any{"deployment": d.Name, "replicas": d.Spec.Replicas, "labels": d.Spec.Template.Labels,
			"serviceAccountName": p.ServiceAccountName, "initContainers": containerSummary(p.InitContainers),
			"containers": containerSummary(p.Containers), "volumes": volumeNames(p.Volumes)})
	}
	slices.SortFunc(svcs.Items, func(a, b corev1.Service) int { return strings.Compare(a.Name, b.Name) })
	for _, sv := range svcs.Items {
		var ports []string
		for _, p := range sv.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%s %d->%s", p.Name, p.Port, p.TargetPort.String()))
		}
		doc = append(doc, map[string]any{"service": sv.Name, "selector": sv.Spec.Selector, "ports": ports})
	}
	slices.SortFunc(hpas.Items, func(a, b autoscalingv2.HorizontalPodAutoscaler) int { return strings.Compare(a.Name, b.Name) })
	for _, h := range hpas.Items {
		var metrics []string
		for _, m := range h.Spec.Metrics {
			if m.Resource != nil && m.Resource.Target.AverageUtilization != nil {
				metrics = append(metrics, fmt.Sprintf("%s %d%%", m.Resource.Name, *m.Resource.Target.AverageUtilization))
			}
		}
		doc = append(doc, map[string]any{"hpa": h.Name, "target": h.Spec.ScaleTargetRef.Name, "min": h.Spec.MinReplicas, "max": h.Spec.MaxReplicas, "metrics": metrics})
	}
	for _, ing := range ings.Items {
		var rules []string
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				rules = append(rules, fmt.Sprintf("%s%s -> %s", r.Host, p.Path, p.Backend.Service.Name))
			}
		}
		doc = append(doc, map[string]any{"ingress": ing.Name, "rules": rules})
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func containerSummary(cs []corev1.Container) []any {
	var out []any
	for _, c := range cs {
		var env []string
		for _, e := range c.Env {
			v := e.Value
			if e.ValueFrom != nil {
				v = "(from " + e.ValueFrom.String() + ")"
			}
			env = append(env, e.Name+"="+v)
		}
		var mounts []string
		for _, m := range c.VolumeMounts {
			mounts = append(mounts, m.Name+":"+m.MountPath)
		}
		out = append(out, map[string]any{"name": c.Name, "image": c.Image, "args": c.Args, "command": c.Command, "env": env,
			"mounts": mounts, "resources": c.Resources})
	}
	return out
}

func volumeNames(vs []corev1.Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}
