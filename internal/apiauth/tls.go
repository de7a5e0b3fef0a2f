package apiauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files of the generated certificate under --data-dir.
const (
	CertFile = "api-tls.crt"
	KeyFile  = "api-tls.key"
)

// TLSMaterial is a serving certificate and what a client needs to trust it.
type TLSMaterial struct {
	Cert tls.Certificate
	// CertPEM is the leaf certificate, PEM encoded (for pinning by clients).
	CertPEM []byte
	// Fingerprint is the SHA-256 of the leaf certificate's DER, hex with colons.
	Fingerprint string
	// SelfSigned is true when Ferry generated the certificate.
	SelfSigned bool
}

// LoadTLS reads a given certificate and key.
func LoadTLS(certFile, keyFile string) (TLSMaterial, error) {
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return TLSMaterial{}, fmt.Errorf("load --api-tls-cert/--api-tls-key: %w", err)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return TLSMaterial{}, err
	}
	return TLSMaterial{Cert: c, CertPEM: certPEM, Fingerprint: Fingerprint(c.Certificate[0])}, nil
}

// SelfSignedTLS loads the certificate Ferry generated earlier in dir, or
// generates one (ECDSA P-256, one year) valid for hosts (names or IPs) plus
// localhost, 127.0.0.1 and ::1. A stored certificate that expires within a
// week or lacks one of hosts is replaced.
func SelfSignedTLS(dir string, hosts []string, now time.Time) (TLSMaterial, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	hosts = append([]string{"localhost", "127.0.0.1", "::1"}, hosts...)
	if m, err := LoadTLS(certPath, keyPath); err == nil {
		leaf, perr := x509.ParseCertificate(m.Cert.Certificate[0])
		if perr == nil && now.Add(7*24*time.Hour).Before(leaf.NotAfter) && covers(leaf, hosts) {
			m.SelfSigned = true
			return m, nil
		}
	}
	// Missing, unreadable or stale: make a new one (the files are Ferry's own).
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TLSMaterial{}, fmt.Errorf("generate api tls key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return TLSMaterial{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ferry up management API"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: clients pin it as its own root
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return TLSMaterial{}, fmt.Errorf("create api tls certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return TLSMaterial{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return TLSMaterial{}, err
	}
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return TLSMaterial{}, fmt.Errorf("write api tls key: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return TLSMaterial{}, fmt.Errorf("write api tls certificate: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return TLSMaterial{}, err
	}
	return TLSMaterial{Cert: c, CertPEM: certPEM, Fingerprint: Fingerprint(der), SelfSigned: true}, nil
}

func covers(leaf *x509.Certificate, hosts []string) bool {
	for _, h := range hosts {
		if h != "" && leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// Fingerprint is the SHA-256 of a DER certificate as colon-separated hex,
// the form `openssl x509 -fingerprint -sha256` prints.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	parts := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// ClientTLS returns a client TLS config that trusts the system roots plus
// caPEM (a pinned self-signed certificate), or nil when caPEM is empty.
func ClientTLS(caPEM string) (*tls.Config, error) {
	if caPEM == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, errors.New("the saved server certificate is not valid PEM")
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
