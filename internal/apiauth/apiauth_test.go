package apiauth

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestGuard(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	var served int
	h := Guard{Token: tok, LoopbackOnly: true, MaxBody: 64, MaxBodyFlag: "--api-max-body", Open: []string{"GET /healthz"}}.
		Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served++
			if r.Body != nil {
				buf := make([]byte, 1024)
				for {
					_, err := r.Body.Read(buf)
					if err != nil {
						if _, ok := err.(*http.MaxBytesError); ok {
							TooLarge(w, 64, "--api-max-body")
							return
						}
						break
					}
				}
			}
			w.WriteHeader(200)
		}))
	cases := []struct {
		name    string
		method  string
		path    string
		host    string
		origin  string
		auth    string
		ctype   string
		body    string
		chunked bool
		want    int
		inMsg   string
	}{
		{"get with token", "GET", "/api/v1/inferenceservices", "127.0.0.1:8090", "", "Bearer " + tok, "", "", false, 200, ""},
		{"get without token", "GET", "/api/v1/inferenceservices", "127.0.0.1:8090", "", "", "", "", false, 401, "--token"},
		{"wrong token", "GET", "/api/v1/inferenceservices", "localhost:8090", "", "Bearer " + strings.Repeat("x", 32), "", "", false, 401, "token"},
		{"basic auth is not a token", "GET", "/x", "localhost", "", "Basic " + tok, "", "", false, 401, ""},
		{"open health", "GET", "/healthz", "[::1]:8090", "", "", "", "", false, 200, ""},
		{"dns rebinding host", "GET", "/healthz", "evil.example:8090", "", "Bearer " + tok, "", "", false, 403, "loopback"},
		{"foreign origin", "POST", "/api/v1/apply", "127.0.0.1:8090", "http://evil.example", "Bearer " + tok, "application/yaml", "a: b", false, 403, "origin"},
		{"foreign origin without token", "POST", "/api/v1/apply", "127.0.0.1:8090", "null", "", "text/plain", "a: b", false, 403, "origin"},
		{"same origin", "POST", "/api/v1/apply", "127.0.0.1:8090", "http://127.0.0.1:8090", "Bearer " + tok, "application/yaml", "a: b", false, 200, ""},
		{"text/plain simple request", "POST", "/api/v1/apply", "127.0.0.1:8090", "", "Bearer " + tok, "text/plain", "a: b", false, 415, "application/yaml"},
		{"form simple request", "POST", "/api/v1/apply", "127.0.0.1:8090", "", "Bearer " + tok, "application/x-www-form-urlencoded", "a=b", false, 415, ""},
		{"no content type", "POST", "/api/v1/apply", "127.0.0.1:8090", "", "Bearer " + tok, "", "a: b", false, 415, "missing"},
		{"json with charset", "POST", "/api/v1/apply", "127.0.0.1:8090", "", "Bearer " + tok, "application/json; charset=utf-8", "{}", false, 200, ""},
		{"declared too large", "POST", "/api/v1/apply", "127.0.0.1:8090", "", "Bearer " + tok, "application/yaml", strings.Repeat("a", 65), false, 413, "--api-max-body"},
		{"chunked too large", "POST", "/api/v1/apply", "127.0.0.1:8090", "", "Bearer " + tok, "application/yaml", strings.Repeat("a", 200), true, 413, "--api-max-body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			served = 0
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			if c.chunked {
				req.ContentLength = -1
			}
			req.Host = c.host
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.want, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), c.inMsg) {
				t.Errorf("body %q does not mention %q", rec.Body, c.inMsg)
			}
			if c.want/100 == 4 && c.want != 413 && served != 0 {
				t.Errorf("handler ran for a refused request")
			}
		})
	}
}

func TestGuardNonLoopbackAcceptsAnyHost(t *testing.T) {
	h := Guard{Token: "t0123456789abcdef0123456789abcdef"}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	req := httptest.NewRequest("GET", "/x", nil)
	req.Host = "ferry.internal:8090"
	req.Header.Set("Authorization", "Bearer t0123456789abcdef0123456789abcdef")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestGuardEmptyTokenRefusesAll(t *testing.T) {
	h := Guard{}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("Authorization", "Bearer ")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestLoadOrCreateToken(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, want 0600", st.Mode().Perm())
	}
	b, err := LoadOrCreateToken(dir)
	if err != nil || a != b {
		t.Fatalf("second load: %q %v, want %q", b, err, a)
	}
	if err := os.Chmod(filepath.Join(dir, TokenFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateToken(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable token accepted: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	reg := Registry{Dir: filepath.Join(t.TempDir(), "servers")}
	rec := Record{Server: "http://127.0.0.1:9000", Token: "tok"}
	if err := reg.Save(rec, KeysForListener("127.0.0.1:9000")...); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://127.0.0.1:9000", "http://localhost:9000/", "http://[::1]:9000", "http://127.0.0.2:9000"} {
		got, ok, err := reg.Lookup(u)
		if err != nil || !ok || got.Token != "tok" {
			t.Errorf("lookup %s: %+v %v %v", u, got, ok, err)
		}
	}
	if _, ok, _ := reg.Lookup("http://127.0.0.1:9001"); ok {
		t.Error("another port found the token")
	}
	if _, ok, _ := reg.Lookup("http://10.0.0.1:9000"); ok {
		t.Error("another host found the token")
	}
	st, err := os.Stat(reg.Dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("registry dir mode: %v %v", st.Mode().Perm(), err)
	}
	if _, err := KeyForURL("127.0.0.1:9000"); err == nil {
		t.Error("a URL without scheme was accepted")
	}
	wild := KeysForListener("0.0.0.0:7000")
	if len(wild) == 0 || wild[0] != "localhost_7000" {
		t.Errorf("wildcard keys %v", wild)
	}
}

func TestSelfSignedTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	m, err := SelfSignedTLS(dir, []string{"10.1.2.3", "ferry.internal"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Fingerprint) != 95 {
		t.Errorf("fingerprint %q", m.Fingerprint)
	}
	again, err := SelfSignedTLS(dir, []string{"10.1.2.3"}, now)
	if err != nil || again.Fingerprint != m.Fingerprint {
		t.Fatalf("certificate not reused: %v", err)
	}
	renewed, err := SelfSignedTLS(dir, []string{"10.1.2.3"}, now.Add(360*24*time.Hour))
	if err != nil || renewed.Fingerprint == m.Fingerprint {
		t.Fatalf("expiring certificate kept: %v", err)
	}
	// A client pinning the certificate can talk to a server using it.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	current, err := SelfSignedTLS(t.TempDir(), nil, now)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{current.Cert}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	cfg, err := ClientTLS(string(current.CertPEM))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Without the pin the certificate is not trusted.
	if _, err := http.Get(srv.URL); err == nil {
		t.Fatal("self-signed certificate trusted without pinning")
	}
}
