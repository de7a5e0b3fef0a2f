// Package kubetest runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver and, when its binary is there, kube-controller-manager
// with only the garbage collector, on loopback ports in a temporary
// directory. By default nothing else runs: no scheduler and no kubelet, so
// Deployments get no pods, and a test drives their status by writing it
// itself. With Options.Pods the cluster makes pods as a real one does: the
// controller manager also runs the Deployment, ReplicaSet and ServiceAccount
// controllers, kube-scheduler binds pods to a Node, and kwok (a simulated
// kubelet) marks them Running and Ready without running their containers.
//
// The binaries are built by scripts/kube-test-cluster.sh; a test that calls
// Start skips, naming that script, when they are missing.
package kubetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"
)

// KubeVersion is the version scripts/kube-test-cluster.sh builds; the
// default asset directory is keyed by it.
const KubeVersion = "v1.37.2"

// AssetsDir returns the directory holding the binaries: FERRY_KUBE_ASSETS,
// or the script's cache directory.
func AssetsDir() string {
	if d := os.Getenv("FERRY_KUBE_ASSETS"); d != "" {
		return d
	}
	root := os.Getenv("FERRY_KUBE_CACHE")
	if root == "" {
		home, _ := os.UserHomeDir()
		root = filepath.Join(home, ".cache", "ferry-kube")
	}
	return filepath.Join(root, KubeVersion, "bin")
}

// Cluster is a running control plane.
type Cluster struct {
	// Config reaches the API server as a member of system:masters.
	Config *rest.Config
	// Kubeconfig is a file holding the same credentials, for processes.
	Kubeconfig string
	// GC reports whether the garbage collector runs, so owner references
	// cascade deletes.
	GC bool
	// Node is the node kwok simulates, with Options.Pods.
	Node string

	procs []*proc
}

// proc is a started process; done closes when it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startTimeout bounds each component's start; the API server takes a few
// seconds on an idle machine and much longer on a loaded 2-core one.
const startTimeout = 2 * time.Minute

// Options configures Start.
type Options struct {
	// CRDDirs are directories of CustomResourceDefinition YAML files,
	// installed and established before the garbage collector starts: it
	// picks up kinds added later only on its next discovery pass (30 s).
	CRDDirs []string
	// Pods makes the cluster create, schedule and run pods (see the
	// package comment). A test asking for it skips when kube-scheduler or
	// kwok is missing.
	Pods bool
}

// KwokNode is the name of the one node kwok simulates with Options.Pods.
const KwokNode = "kwok-node-0"

// Start starts a cluster that is stopped when t ends, or skips t when the
// binaries are missing.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	dir := AssetsDir()
	need := []string{"etcd", "kube-apiserver"}
	if opts.Pods {
		need = append(need, "kube-controller-manager", "kube-scheduler", "kwok", "kwok.yaml")
	}
	for _, b := range need {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Skipf("no %s in %s: run scripts/kube-test-cluster.sh (or set FERRY_KUBE_ASSETS) to build the test cluster", b, dir)
		}
	}
	work := t.TempDir()
	c := &Cluster{}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(c.stop)
	if err := c.start(t, dir, work, opts); err != nil {
		t.Fatal(err)
	}
	if opts.Pods {
		// A pod that never becomes ready is explained by these logs,
		// which go with the temporary directory.
		t.Cleanup(func() {
			if t.Failed() {
				for _, name := range []string{"kube-controller-manager", "kube-scheduler", "kwok"} {
					t.Logf("%s log ends:\n%s", name, logTail(filepath.Join(work, name+".log")))
				}
			}
		})
	}
	return c
}

func (c *Cluster) start(t testing.TB, bin, work string, opts Options) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	apiPort := ports[2]

	etcd := exec.Command(filepath.Join(bin, "etcd"),
		"--name=default",
		"--data-dir="+filepath.Join(work, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync", "--log-level=error")
	if _, err := c.run(etcd, work, "etcd"); err != nil {
		return err
	}

	certPEM, keyPEM, err := servingCert()
	if err != nil {
		return err
	}
	saKey, saPub, err := serviceAccountKey()
	if err != nil {
		return err
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	files := map[string][]byte{
		"apiserver.crt": certPEM,
		"apiserver.key": keyPEM,
		"sa.key":        saKey,
		"sa.pub":        saPub,
		"tokens.csv":    []byte(token + ",admin,admin,system:masters\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(work, name), b, 0o600); err != nil {
			return err
		}
	}
	host := "https://127.0.0.1:" + strconv.Itoa(apiPort)
	api := exec.Command(filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		// The "kubernetes" Service's endpoints may not be a loopback
		// address, and nothing here needs them.
		"--endpoint-reconciler-type=none",
		"--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+filepath.Join(work, "apiserver.crt"),
		"--tls-private-key-file="+filepath.Join(work, "apiserver.key"),
		"--cert-dir="+filepath.Join(work, "certs"),
		"--service-account-issuer=https://localhost",
		"--service-account-key-file="+filepath.Join(work, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(work, "sa.key"),
		"--token-auth-file="+filepath.Join(work, "tokens.csv"),
		"--authorization-mode=RBAC",
		// Room for one ClusterIP per component of thousands of
		// InferenceServices (a /24 ran out at 253 in the benchmark).
		"--service-cluster-ip-range=10.96.0.0/16",
		"--enable-priority-and-fairness=false",
		"--v=0")
	apiProc, err := c.run(api, work, "kube-apiserver")
	if err != nil {
		return err
	}
	c.Config = &rest.Config{
		Host:            host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: certPEM},
		QPS:             200,
		Burst:           400,
	}
	if err := waitReady(host+"/readyz", certPEM, token, apiProc.done); err != nil {
		return fmt.Errorf("kube-apiserver: %w; its log ends:\n%s", err, logTail(filepath.Join(work, "kube-apiserver.log")))
	}

	for _, d := range opts.CRDDirs {
		if err := installCRDs(c.Config, d); err != nil {
			return err
		}
	}

	c.Kubeconfig = filepath.Join(work, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig(host, certPEM, token), 0o600); err != nil {
		return err
	}
	if kcm := filepath.Join(bin, "kube-controller-manager"); fileExists(kcm) {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		// Only the garbage collector, unless the test wants pods: the
		// Deployment controller would overwrite the Deployment status the
		// other tests write. Pods need their namespace's "default"
		// ServiceAccount, which the serviceaccount controller makes.
		controllers := "garbagecollector"
		if opts.Pods {
			controllers += ",deployment,replicaset,serviceaccount"
		}
		cmd := exec.Command(kcm,
			"--kubeconfig="+c.Kubeconfig,
			"--authentication-kubeconfig="+c.Kubeconfig,
			"--authorization-kubeconfig="+c.Kubeconfig,
			"--controllers="+controllers,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--secure-port="+strconv.Itoa(ports[0]),
			"--v=0")
		if _, err := c.run(cmd, work, "kube-controller-manager"); err != nil {
			return err
		}
		c.GC = true
	} else {
		t.Logf("no kube-controller-manager in %s: owner references will not cascade deletes", bin)
	}
	if opts.Pods {
		return c.startPods(bin, work)
	}
	return nil
}

// startPods starts kube-scheduler and kwok and registers the node kwok
// simulates, waiting until kwok has marked it Ready.
func (c *Cluster) startPods(bin, work string) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	sched := exec.Command(filepath.Join(bin, "kube-scheduler"),
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig,
		"--authorization-kubeconfig="+c.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[0]),
		"--v=0")
	if _, err := c.run(sched, work, "kube-scheduler"); err != nil {
		return err
	}
	// kwok manages only the nodes carrying its annotation; its own HTTP
	// server (the simulated kubelet's) listens on loopback.
	kwok := exec.Command(filepath.Join(bin, "kwok"),
		"--kubeconfig="+c.Kubeconfig,
		"--config="+filepath.Join(bin, "kwok.yaml"),
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--server-address=127.0.0.1:"+strconv.Itoa(ports[1]),
		"--node-ip=127.0.0.1",
		"--cidr=10.244.0.1/16")
	if _, err := c.run(kwok, work, "kwok"); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        KwokNode,
		Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
		Labels:      map[string]string{"kubernetes.io/hostname": KwokNode, "type": "kwok"},
	}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", KwokNode, err)
	}
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, KwokNode, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("kwok did not mark node %s Ready: %w; its log ends:\n%s", KwokNode, err, logTail(filepath.Join(work, "kwok.log")))
	}
	// The API server taints a new node not-ready; the node lifecycle
	// controller would lift the taint once the node reports Ready, but it
	// also evicts pods from a node without kubelet heartbeats, so it does
	// not run, and the taint is lifted here.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, KwokNode, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Spec.Taints = nil
		_, err = cs.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("untaint node %s: %w", KwokNode, err)
	}
	// Room for every sample, GPU ones included (nothing runs on it).
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := cs.CoreV1().Nodes().Get(ctx, KwokNode, metav1.GetOptions{})
		if err != nil {
			return err
		}
		room := corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("1k"),
			corev1.ResourceMemory: resource.MustParse("1Ti"),
			corev1.ResourcePods:   resource.MustParse("1k"),
			"nvidia.com/gpu":      resource.MustParse("64"),
		}
		n.Status.Capacity, n.Status.Allocatable = room, room
		_, err = cs.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("size node %s: %w", KwokNode, err)
	}
	c.Node = KwokNode
	return nil
}

// run starts cmd with its output in work/<name>.log, in its own process
// group so that stop can end it and nothing it started.
func (c *Cluster) run(cmd *exec.Cmd, work, name string) (*proc, error) {
	log, err := os.Create(filepath.Join(work, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	// Pdeathsig: a test binary killed outright still takes them along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p, nil
}

// stop ends the processes newest first (API server before etcd): SIGTERM,
// then SIGKILL after a grace period, and waits for each.
func (c *Cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	c.procs = nil
}

func waitReady(url string, caPEM []byte, token string, exited <-chan struct{}) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		last = err
		select {
		case <-exited:
			return fmt.Errorf("exited before it was ready: %v", last)
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v", startTimeout, last)
		case <-tick.C:
		}
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// servingCert returns a self-signed certificate for 127.0.0.1 and
// localhost that is its own CA, so clients can trust exactly it.
func servingCert() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// serviceAccountKey returns the key pair the API server signs and checks
// service-account tokens with.
func serviceAccountKey() (keyPEM, pubPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), nil
}

func kubeconfig(host string, caPEM []byte, token string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, host, b64(caPEM), token)
	return b.Bytes()
}

// logTail returns the end of a component's log for a failure message: the
// log itself goes with the test's temporary directory.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	const n = 3000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// installCRDs creates every CRD in dir's YAML files (less a kustomize
// kustomization.yaml listing them) and waits until each is established.
func installCRDs(cfg *rest.Config, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	files = slices.DeleteFunc(files, func(f string) bool { return filepath.Base(f) == "kustomization.yaml" })
	if len(files) == 0 {
		return fmt.Errorf("no CRD files in %s", dir)
	}
	cs, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var crd apiextv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(b, &crd); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if _, err := cs.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, &crd, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		err = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			got, err := cs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", crd.Name, err)
		}
	}
	return nil
}
