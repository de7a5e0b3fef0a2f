package operator

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testIssuer = certIssuer{
	dnsNames: WebhookConfig{Service: "ferry-system/ferry-webhook-service"}.dnsNames(),
	ips:      []net.IP{net.IPv4(127, 0, 0, 1)},
	lifetime: 90 * time.Minute,
}

func TestCertIssue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, err := testIssuer.issue(now, nil)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := testIssuer.check(p, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := kp.Leaf
	if want := []string{"ferry-webhook-service.ferry-system.svc", "ferry-webhook-service.ferry-system.svc.cluster.local"}; strings.Join(leaf.DNSNames, ",") != strings.Join(want, ",") {
		t.Errorf("DNS names %q, want %q", leaf.DNSNames, want)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !leaf.NotAfter.Equal(now.Add(90*time.Minute)) || leaf.NotBefore.After(now) {
		t.Errorf("valid %s to %s", leaf.NotBefore, leaf.NotAfter)
	}
	if leaf.IsCA || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("serving certificate: CA %v, usages %v", leaf.IsCA, leaf.ExtKeyUsage)
	}
	cas := parseCerts(p.ca)
	if len(cas) != 1 || !cas[0].IsCA {
		t.Fatalf("bundle holds %d certificates", len(cas))
	}
	// Renewed once a third of the lifetime is left, not before.
	if _, err := testIssuer.check(p, now.Add(59*time.Minute)); err != nil {
		t.Errorf("at 59 of 90 minutes: %v", err)
	}
	if _, err := testIssuer.check(p, now.Add(60*time.Minute)); err == nil || !strings.Contains(err.Error(), "renewing") {
		t.Errorf("at 60 of 90 minutes: %v, want renewal", err)
	}
	// A certificate for other names, a key of another certificate, a
	// bundle that does not verify it: all replaced.
	other := testIssuer
	other.dnsNames = []string{"other.ns.svc"}
	if _, err := other.check(p, now); err == nil {
		t.Error("a certificate for other names passes")
	}
	p2, _ := testIssuer.issue(now, nil)
	if _, err := testIssuer.check(certPair{cert: p.cert, key: p2.key, ca: p.ca}, now); err == nil {
		t.Error("a mismatched key passes")
	}
	if _, err := testIssuer.check(certPair{cert: p.cert, key: p.key, ca: p2.ca}, now); err == nil {
		t.Error("a certificate its bundle does not verify passes")
	}
	if _, err := testIssuer.check(certPair{}, now); err == nil {
		t.Error("nothing stored passes")
	}
	if _, err := testIssuer.check(certPair{cert: []byte("x"), key: []byte("y"), ca: []byte("z")}, now); err == nil {
		t.Error("garbage passes")
	}

	// Rotation: the new bundle trusts the old certificate too, until the
	// old CA expires.
	later := now.Add(61 * time.Minute)
	p3, err := testIssuer.issue(later, p.ca)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(parseCerts(p3.ca)); n != 2 {
		t.Fatalf("rotated bundle holds %d CAs, want 2", n)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p3.ca)
	for _, c := range []*x509.Certificate{leaf, mustLeaf(t, p3)} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: later, DNSName: "ferry-webhook-service.ferry-system.svc"}); err != nil {
			t.Errorf("rotated bundle: %v", err)
		}
	}
	p4, _ := testIssuer.issue(now.Add(91*time.Minute), p3.ca)
	if n := len(parseCerts(p4.ca)); n != 2 {
		t.Errorf("bundle after the first CA expired holds %d CAs, want 2 (the second and the new)", n)
	}
	p5, _ := testIssuer.issue(now.Add(200*time.Minute), p4.ca)
	if n := len(parseCerts(p5.ca)); n != 1 {
		t.Errorf("bundle after every old CA expired holds %d CAs, want 1", n)
	}
}

func mustLeaf(t *testing.T, p certPair) *x509.Certificate {
	t.Helper()
	kp, err := tls.X509KeyPair(p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return kp.Leaf
}

// TestCertManagerRotation drives the manager with a clock: it serves at
// once, renews when a third of the lifetime is left, and switches to
// the new certificate only after the grace period.
func TestCertManagerRotation(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &certManager{issuer: testIssuer, store: &memStore{}, interval: 10 * time.Minute, grace: 10 * time.Second,
		now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	if _, err := m.GetCertificate(nil); err == nil || m.ready(nil) == nil {
		t.Error("a certificate is served before the first pass")
	}
	next, err := m.sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.GetCertificate(nil)
	if err != nil || m.ready(nil) != nil {
		t.Fatalf("after the first pass: %v", err)
	}
	if !next.Equal(now.Add(10 * time.Minute)) {
		t.Errorf("next pass at %s, want the interval", next)
	}
	now = now.Add(55 * time.Minute)
	if next, _ = m.sync(ctx); !next.Equal(first.Leaf.NotAfter.Add(-30 * time.Minute)) {
		t.Errorf("next pass at %s, want the renewal time %s", next, first.Leaf.NotAfter.Add(-30*time.Minute))
	}
	now = now.Add(5 * time.Minute) // 60 of 90 minutes
	if next, _ = m.sync(ctx); !next.Equal(now.Add(10 * time.Second)) {
		t.Errorf("next pass at %s, want the switch after grace", next)
	}
	if c, _ := m.GetCertificate(nil); c != first {
		t.Error("the renewed certificate is served before the grace period")
	}
	stored, _ := m.store.load(ctx)
	now = now.Add(10 * time.Second)
	if _, err := m.sync(ctx); err != nil {
		t.Fatal(err)
	}
	c, _ := m.GetCertificate(nil)
	if c == first || !bytes.Equal(c.Leaf.Raw, mustLeaf(t, stored).Raw) {
		t.Error("the renewed certificate is not served after the grace period")
	}
}

// TestCertDirStore checks that a restart with the same directory serves
// the stored certificate instead of making a new one.
func TestCertDirStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Now()
	mk := func() *certManager {
		return &certManager{issuer: testIssuer, store: dirStore{dir: dir}, interval: time.Minute, grace: time.Second,
			now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)}
	}
	a := mk()
	if _, err := a.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{certFile, keyFile, caFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	now = now.Add(time.Minute)
	b := mk()
	if _, err := b.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	ca, _ := a.GetCertificate(nil)
	cb, _ := b.GetCertificate(nil)
	if !bytes.Equal(ca.Leaf.Raw, cb.Leaf.Raw) {
		t.Error("a restart made a new certificate instead of serving the stored one")
	}
	// A corrupt file is replaced.
	if err := os.WriteFile(filepath.Join(dir, keyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mk()
	if _, err := c.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	cc, _ := c.GetCertificate(nil)
	if bytes.Equal(cc.Leaf.Raw, ca.Leaf.Raw) {
		t.Error("a corrupt key was kept")
	}
}

func TestWebhookConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		c    WebhookConfig
		want string
	}{
		{WebhookConfig{}, ""},
		{WebhookConfig{Port: 9443, Service: "ferry-system/ferry-webhook-service", Secret: "ferry-system/cert"}, ""},
		{WebhookConfig{Port: 9443, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, ""},
		{WebhookConfig{Port: 9443}, "need --webhook-service"},
		{WebhookConfig{Port: 70000, Service: "a/b"}, "want 1-65535"},
		{WebhookConfig{Port: 9443, Service: "b"}, `--webhook-service "b": want namespace/name`},
		{WebhookConfig{Port: 9443, Service: "a/b", Secret: "/x"}, `--webhook-secret "/x"`},
		{WebhookConfig{Port: 9443, Service: "a/b", Secret: "a/x", CertDir: "/tmp"}, "keep the certificate in one place"},
		{WebhookConfig{Port: 9443, Service: "a/b", CertLifetime: time.Second}, "too short"},
	} {
		err := tc.c.validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
}
