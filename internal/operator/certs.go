package operator

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Names of the files (and Secret keys) that hold the webhook's serving
// certificate, its key and the CA bundle that verifies it; tls.crt and
// tls.key are what a kubernetes.io/tls Secret holds.
const (
	certFile   = "tls.crt"
	keyFile    = "tls.key"
	caFile     = "ca.crt"
	certOrgPEM = "ferry-operator"
)

// certPair is a serving certificate and key with the CA bundle (PEM, one
// or more CAs) that verifies it, as stored; version is the Secret's
// resourceVersion ("" for files, or when nothing is stored).
type certPair struct {
	cert, key, ca []byte
	version       string
}

// certStore keeps the certificate where every replica and restart finds
// it. load returns a zero certPair when nothing is stored; save writes p
// unless the stored copy changed since it was loaded as prev (then it
// fails with an error for which apierrors.IsConflict or IsAlreadyExists
// holds, and the caller loads again).
type certStore interface {
	load(ctx context.Context) (certPair, error)
	save(ctx context.Context, p, prev certPair) error
}

// memStore keeps the certificate in memory only: a restart makes a new
// one (and patches the CA bundle again).
type memStore struct {
	mu sync.Mutex
	p  certPair
}

func (s *memStore) load(context.Context) (certPair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p, nil
}

func (s *memStore) save(_ context.Context, p, _ certPair) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p = p
	return nil
}

// dirStore keeps the certificate in three files of a directory.
type dirStore struct{ dir string }

func (s dirStore) load(context.Context) (certPair, error) {
	var p certPair
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{certFile, &p.cert}, {keyFile, &p.key}, {caFile, &p.ca}} {
		b, err := os.ReadFile(filepath.Join(s.dir, f.name))
		if errors.Is(err, os.ErrNotExist) {
			return certPair{}, nil
		}
		if err != nil {
			return certPair{}, fmt.Errorf("webhook certificate: %w", err)
		}
		*f.dst = b
	}
	return p, nil
}

// save writes each file to a temporary name and renames it, so that a
// reader never sees half a file; the key is written before the
// certificate, and the CA bundle first.
func (s dirStore) save(_ context.Context, p, _ certPair) error {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("webhook certificate: %w", err)
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{caFile, p.ca}, {keyFile, p.key}, {certFile, p.cert}} {
		tmp, err := os.CreateTemp(s.dir, "."+f.name+"-*")
		if err != nil {
			return fmt.Errorf("webhook certificate: %w", err)
		}
		_, err = tmp.Write(f.b)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), filepath.Join(s.dir, f.name))
		}
		if err != nil {
			_ = os.Remove(tmp.Name())
			return fmt.Errorf("webhook certificate: %w", err)
		}
	}
	return nil
}

// secretStore keeps the certificate in a kubernetes.io/tls Secret, read
// without the manager's cache (which would otherwise watch every Secret
// in the cluster) and written with the version it was read at, so that
// replicas racing to rotate agree on one certificate.
type secretStore struct {
	reader client.Reader
	writer client.Client
	key    types.NamespacedName
}

func (s secretStore) load(ctx context.Context) (certPair, error) {
	var sec corev1.Secret
	err := s.reader.Get(ctx, s.key, &sec)
	if apierrors.IsNotFound(err) {
		return certPair{}, nil
	}
	if err != nil {
		return certPair{}, fmt.Errorf("webhook certificate secret %s: %w", s.key, err)
	}
	return certPair{cert: sec.Data[certFile], key: sec.Data[keyFile], ca: sec.Data[caFile], version: sec.ResourceVersion}, nil
}

func (s secretStore) save(ctx context.Context, p, prev certPair) error {
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.key.Namespace, Name: s.key.Name,
			Labels: map[string]string{LabelManagedBy: managedBy}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{certFile: p.cert, keyFile: p.key, caFile: p.ca},
	}
	if prev.version == "" {
		// Nothing was stored when we looked: another replica creating it
		// first makes this fail with AlreadyExists.
		if err := s.writer.Create(ctx, sec); err != nil {
			return fmt.Errorf("webhook certificate secret %s: %w", s.key, err)
		}
		return nil
	}
	sec.ResourceVersion = prev.version
	if err := s.writer.Update(ctx, sec); err != nil {
		return fmt.Errorf("webhook certificate secret %s: %w", s.key, err)
	}
	return nil
}

// certIssuer makes self-signed webhook certificates.
type certIssuer struct {
	dnsNames []string
	ips      []net.IP
	lifetime time.Duration
}

// issue makes a new CA and a serving certificate it signs, both valid for
// lifetime from now (backdated a little for clocks that differ), and
// returns them with a bundle of the new CA and those CAs of oldBundle
// still valid, so that a client holding the new bundle trusts the
// certificate served before the switch too. The CA's key is dropped:
// the next rotation makes a new CA.
func (c certIssuer) issue(now time.Time, oldBundle []byte) (certPair, error) {
	skew := min(time.Minute, c.lifetime/10)
	notBefore, notAfter := now.Add(-skew), now.Add(c.lifetime)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certPair{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{certOrgPEM}, CommonName: "ferry-operator webhook CA " + now.UTC().Format(time.RFC3339)},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return certPair{}, fmt.Errorf("webhook CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return certPair{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return certPair{}, err
	}
	cn := "ferry-operator webhook"
	if len(c.dnsNames) > 0 {
		cn = c.dnsNames[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{certOrgPEM}, CommonName: cn},
		DNSNames:     c.dnsNames,
		IPAddresses:  c.ips,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return certPair{}, fmt.Errorf("webhook certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return certPair{}, err
	}
	bundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for _, old := range parseCerts(oldBundle) {
		if old.IsCA && now.Before(old.NotAfter) && !old.Equal(ca) {
			bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: old.Raw})...)
		}
	}
	return certPair{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		ca:   bundle,
	}, nil
}

// serial is a random 128-bit serial number, as RFC 5280 asks.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// parseCerts returns the certificates of a PEM bundle, skipping what does
// not parse.
func parseCerts(b []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

// check parses p and reports why it cannot serve the issuer's names
// until at least renewAt: unparsable, a key that does not match, not
// verified by its own bundle, a name or address missing, or too close
// to expiry.
func (c certIssuer) check(p certPair, now time.Time) (*tls.Certificate, error) {
	if len(p.cert) == 0 {
		return nil, errors.New("no certificate stored")
	}
	kp, err := tls.X509KeyPair(p.cert, p.key)
	if err != nil {
		return nil, fmt.Errorf("stored certificate: %w", err)
	}
	leaf := kp.Leaf
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.ca) {
		return nil, errors.New("stored CA bundle holds no certificate")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("stored certificate: %w", err)
	}
	for _, n := range c.dnsNames {
		if err := leaf.VerifyHostname(n); err != nil {
			return nil, fmt.Errorf("stored certificate: %w", err)
		}
	}
	for _, ip := range c.ips {
		if err := leaf.VerifyHostname(ip.String()); err != nil {
			return nil, fmt.Errorf("stored certificate: %w", err)
		}
	}
	if !now.Before(c.renewAt(leaf)) {
		return nil, fmt.Errorf("stored certificate expires at %s: renewing", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &kp, nil
}

// renewAt is when a certificate is replaced: when a third of the
// lifetime is left.
func (c certIssuer) renewAt(leaf *x509.Certificate) time.Time {
	return leaf.NotAfter.Add(-c.lifetime / 3)
}

// certManager keeps the webhook's serving certificate: it loads it from
// its store, makes a new one when there is none or it is due for renewal,
// writes the CA bundle into the webhook configurations it is told about,
// and serves it through GetCertificate. Every replica runs one (the
// webhook server runs on each, not only on the leader); they agree
// through the store's optimistic concurrency.
type certManager struct {
	issuer certIssuer
	store  certStore
	// reader reads the webhook configurations without a cache; writer
	// updates them.
	reader client.Reader
	writer client.Client
	// configurations are the names of the Validating- and
	// MutatingWebhookConfigurations whose caBundle is kept; a name may be
	// either kind or both.
	configurations []string
	// crds are CustomResourceDefinitions (by name) whose conversion
	// webhook's caBundle is kept, and whose Service is pointed at
	// service when that is set.
	crds    []string
	service types.NamespacedName
	// deniedKinds are the "kind/name"s of configurations the operator may
	// not read (only Run's goroutine touches it).
	deniedKinds map[string]bool
	// interval is how often the store and the configurations are checked
	// (another replica's rotation, a caBundle reset by re-applying the
	// install manifests); grace is how long a new certificate waits after
	// its bundle was published before it is served, so that the API
	// server has seen the bundle that trusts it.
	interval, grace time.Duration
	now             func() time.Time
	log             *slog.Logger

	mu      sync.Mutex
	serving *tls.Certificate
	// pending is the next certificate, served from switchAt on.
	pending  *tls.Certificate
	switchAt time.Time
}

// GetCertificate serves the current certificate (tls.Config's hook).
func (m *certManager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.serving == nil {
		return nil, errors.New("webhook certificate not ready yet")
	}
	return m.serving, nil
}

// ready is a readiness check: ready once a certificate is served.
func (m *certManager) ready(*http.Request) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.serving == nil {
		return errors.New("webhook certificate not ready yet")
	}
	return nil
}

// NeedLeaderElection reports false: every replica serves webhooks.
func (m *certManager) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable.
func (m *certManager) Start(ctx context.Context) error { return m.Run(ctx) }

// Run keeps the certificate until ctx is cancelled. A failed pass (the
// API server unreachable, a conflict with another replica) is logged and
// retried after a second, doubling to the check interval.
func (m *certManager) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		next, err := m.sync(ctx)
		wait := next.Sub(m.now())
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
				m.log.Warn("webhook certificate", "err", err, "retry_in", backoff)
			}
			wait = min(wait, backoff)
			backoff = min(2*backoff, m.interval)
		} else {
			backoff = time.Second
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// sync does one pass and returns when the next is due.
func (m *certManager) sync(ctx context.Context) (time.Time, error) {
	now := m.now()
	next := now.Add(m.interval)
	stored, err := m.store.load(ctx)
	if err != nil {
		return next, err
	}
	kp, why := m.issuer.check(stored, now)
	if why != nil {
		fresh, err := m.issuer.issue(now, stored.ca)
		if err != nil {
			return next, err
		}
		if err := m.store.save(ctx, fresh, stored); err != nil {
			return next, err
		}
		m.log.Info("webhook certificate issued", "reason", why.Error(), "names", m.issuer.dnsNames)
		stored = fresh
		if kp, err = m.issuer.check(stored, now); err != nil {
			return next, err // a bug in issue
		}
	}
	// A configuration that cannot be patched does not stop the webhook
	// from serving (the error is retried).
	perr := m.patchBundles(ctx, stored.ca)
	m.adopt(kp, now)
	if at := m.issuer.renewAt(kp.Leaf); at.Before(next) {
		next = at
	}
	m.mu.Lock()
	if m.pending != nil && m.switchAt.Before(next) {
		next = m.switchAt
	}
	m.mu.Unlock()
	return next, perr
}

// adopt serves kp: at once when nothing is served yet, after grace when
// it replaces another certificate, since its CA has just been published.
func (m *certManager) adopt(kp *tls.Certificate, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.serving == nil:
		m.serving = kp
		m.pending = nil
	case bytes.Equal(m.serving.Leaf.Raw, kp.Leaf.Raw):
		m.pending = nil
	case m.pending != nil && bytes.Equal(m.pending.Leaf.Raw, kp.Leaf.Raw):
		if !now.Before(m.switchAt) {
			m.serving, m.pending = kp, nil
			m.log.Info("webhook certificate now served", "not_after", kp.Leaf.NotAfter.UTC())
		}
	default:
		m.pending, m.switchAt = kp, now.Add(m.grace)
		if m.grace <= 0 {
			m.serving, m.pending = kp, nil
		}
	}
}

// patchBundles writes bundle into every webhook of the named
// configurations that does not hold it yet. A name that exists as neither
// kind is reported; the next pass looks again.
func (m *certManager) patchBundles(ctx context.Context, bundle []byte) error {
	var errs []error
	for _, name := range m.configurations {
		found := false
		var denied error
		for _, obj := range []client.Object{&admissionregistrationv1.ValidatingWebhookConfiguration{}, &admissionregistrationv1.MutatingWebhookConfiguration{}} {
			key := configKind(obj) + "/" + name
			if m.deniedKinds[key] {
				continue
			}
			err := m.reader.Get(ctx, types.NamespacedName{Name: name}, obj)
			if apierrors.IsNotFound(err) {
				continue
			}
			if apierrors.IsForbidden(err) {
				// config/rbac grants each name as the one kind it is:
				// the other kind's is not ours to read, and is not
				// asked for again.
				denied = err
				if m.deniedKinds == nil {
					m.deniedKinds = map[string]bool{}
				}
				m.deniedKinds[key] = true
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("webhook configuration %s: %w", name, err))
				continue
			}
			found = true
			if !setBundle(obj, bundle) {
				continue
			}
			if err := m.writer.Update(ctx, obj); err != nil {
				errs = append(errs, fmt.Errorf("webhook configuration %s: %w", name, err))
				continue
			}
			m.log.Info("webhook configuration CA bundle updated", "name", name, "kind", configKind(obj))
		}
		switch {
		case !found && denied != nil:
			errs = append(errs, fmt.Errorf("no ValidatingWebhookConfiguration or MutatingWebhookConfiguration %q that may be read: %w", name, denied))
		case !found:
			errs = append(errs, fmt.Errorf("no ValidatingWebhookConfiguration or MutatingWebhookConfiguration %q", name))
		}
	}
	for _, name := range m.crds {
		if err := m.patchCRD(ctx, name, bundle); err != nil {
			errs = append(errs, fmt.Errorf("CustomResourceDefinition %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// patchCRD writes bundle into the conversion webhook's clientConfig of the
// CRD name, and the Service m.service when the CRD calls another one
// (the Helm chart's CRDs name ferry-system whatever the release's
// namespace), with a merge patch of those fields alone: the operator may
// get and patch that CRD and no other.
func (m *certManager) patchCRD(ctx context.Context, name string, bundle []byte) error {
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(crdGVK)
	if err := m.reader.Get(ctx, types.NamespacedName{Name: name}, crd); err != nil {
		return err
	}
	if s, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "strategy"); s != "Webhook" {
		return fmt.Errorf("conversion strategy %q, want Webhook", s)
	}
	cc, _, _ := unstructured.NestedMap(crd.Object, "spec", "conversion", "webhook", "clientConfig")
	set := map[string]any{}
	if ca := base64.StdEncoding.EncodeToString(bundle); cc["caBundle"] != ca {
		set["caBundle"] = ca
	}
	if svc, ok := cc["service"].(map[string]any); ok && m.service.Name != "" &&
		(svc["namespace"] != m.service.Namespace || svc["name"] != m.service.Name) {
		set["service"] = map[string]any{"namespace": m.service.Namespace, "name": m.service.Name}
	}
	if len(set) == 0 {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"conversion": map[string]any{"webhook": map[string]any{"clientConfig": set}}}})
	if err != nil {
		return err
	}
	if err := m.writer.Patch(ctx, crd, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return err
	}
	m.log.Info("conversion webhook CA bundle updated", "crd", name, "service_changed", set["service"] != nil)
	return nil
}

func configKind(obj client.Object) string {
	if _, ok := obj.(*admissionregistrationv1.ValidatingWebhookConfiguration); ok {
		return "ValidatingWebhookConfiguration"
	}
	return "MutatingWebhookConfiguration"
}

// setBundle sets every webhook's caBundle in obj and reports whether any
// changed.
func setBundle(obj client.Object, bundle []byte) bool {
	changed := false
	set := func(cc *admissionregistrationv1.WebhookClientConfig) {
		if !bytes.Equal(cc.CABundle, bundle) {
			cc.CABundle = bytes.Clone(bundle)
			changed = true
		}
	}
	switch o := obj.(type) {
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		for i := range o.Webhooks {
			set(&o.Webhooks[i].ClientConfig)
		}
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		for i := range o.Webhooks {
			set(&o.Webhooks[i].ClientConfig)
		}
	}
	return changed
}
