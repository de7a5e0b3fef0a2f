package storage

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"
)

// httpClient returns a client for an object store: the default transport,
// optionally without certificate checks or with extra roots. A server that
// sends no response headers for idle (> 0) fails the request, so a stalled
// listing is retried instead of hanging until the pull's timeout.
func httpClient(skipVerify bool, caBundle string, idle time.Duration) (*http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if idle > 0 {
		t.ResponseHeaderTimeout = idle
	}
	if skipVerify || caBundle != "" {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: skipVerify} //nolint:gosec // the operator asked for it (S3_VERIFY_SSL=0)
	}
	if caBundle != "" {
		pem, err := os.ReadFile(caBundle)
		if err != nil {
			return nil, fmt.Errorf("ca bundle: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca bundle %s holds no PEM certificates", caBundle)
		}
		t.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: t}, nil
}
