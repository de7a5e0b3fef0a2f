package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/apiauth"
)

const testToken = "s3cret-token"

// server is the console behind the management API's guard, as ferry up
// mounts it, beside a stand-in for the API.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"items":[]}`) })
	Register(mux)
	g := apiauth.Guard{Token: testToken, LoopbackOnly: true, Open: append([]string{"GET /healthz"}, OpenRoutes()...)}
	srv := httptest.NewServer(g.Wrap(mux))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestStaticFilesNeedNoTokenAndCarrySecurityHeaders(t *testing.T) {
	srv := server(t)
	wantType := map[string]string{"": "text/html", "/": "text/html", "/index.html": "text/html", "/app.js": "text/javascript",
		"/style.css": "text/css", "/favicon.svg": "image/svg+xml"}
	for suffix, ct := range wantType {
		resp, body := get(t, srv, "GET", Path+suffix, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s%s without a token: %d %s", Path, suffix, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, ct) {
			t.Errorf("GET %s%s: Content-Type %q, want %s", Path, suffix, got, ct)
		}
		for k, v := range map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy, "X-Frame-Options": "DENY",
			"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
		} {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("GET %s%s: %s = %q, want %q", Path, suffix, k, got, v)
			}
		}
		name := strings.TrimPrefix(suffix, "/")
		if name == "" {
			name = "index.html"
		}
		want, err := fs.ReadFile(files, name)
		if err != nil {
			t.Fatal(err)
		}
		if body != string(want) {
			t.Errorf("GET %s%s: body is not the embedded %s", Path, suffix, name)
		}
	}
	// Every embedded file is reachable without a token.
	for _, r := range OpenRoutes() {
		method, path, _ := strings.Cut(r, " ")
		if resp, body := get(t, srv, method, path, nil); resp.StatusCode != 200 {
			t.Errorf("%s without a token: %d %s", r, resp.StatusCode, body)
		}
	}
}

func TestCSPForbidsInlineScriptAndFraming(t *testing.T) {
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
		if !strings.Contains(ContentSecurityPolicy, want) {
			t.Errorf("CSP %q lacks %q", ContentSecurityPolicy, want)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe-") {
		t.Errorf("CSP allows something unsafe: %q", ContentSecurityPolicy)
	}
}

func TestOnlyStaticFilesAreOpen(t *testing.T) {
	srv := server(t)
	bearer := map[string]string{"Authorization": "Bearer " + testToken}
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		want         int
	}{
		{"GET", "/api/v1/inferenceservices", nil, 401},
		{"GET", "/api/v1/inferenceservices", map[string]string{"Authorization": "Bearer wrong"}, 401},
		{"GET", "/api/v1/inferenceservices", bearer, 200},
		// The page's own origin passes; another site's does not, token or not.
		{"GET", "/api/v1/inferenceservices", map[string]string{"Authorization": "Bearer " + testToken, "Origin": "http://evil.example"}, 403},
		{"GET", Path + "/", map[string]string{"Origin": "http://evil.example"}, 403},
		// Not a static file: guarded like the API.
		{"GET", Path + "/nothing-here.js", nil, 401},
		{"GET", Path + "/nothing-here.js", bearer, 404},
		{"POST", Path + "/", nil, 401},
		{"GET", Path + "/../api/v1/inferenceservices", nil, 401},
		{"HEAD", Path + "/app.js", nil, 401}, // the guard opens GET only
	} {
		resp, body := get(t, srv, tc.method, tc.path, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %v: %d %s, want %d", tc.method, tc.path, tc.hdr, resp.StatusCode, body, tc.want)
		}
	}
	// Same origin (the console's own fetches) passes with the token.
	resp, body := get(t, srv, "GET", "/api/v1/inferenceservices", map[string]string{"Authorization": "Bearer " + testToken, "Origin": srv.URL})
	if resp.StatusCode != 200 {
		t.Errorf("same-origin API call: %d %s", resp.StatusCode, body)
	}
}

// TestPageHasNoInlineCode keeps the page within its own CSP: scripts
// only by src, no event-handler or style attributes, no HTML parsing of
// data in the modules, and every module import and page reference names
// an embedded file.
func TestPageHasNoInlineCode(t *testing.T) {
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := string(index)
	for _, m := range regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(html, -1) {
		if !strings.Contains(m[1], "src=") || strings.TrimSpace(m[2]) != "" {
			t.Errorf("inline script in index.html: %q", m[0])
		}
	}
	if regexp.MustCompile(`(?i)\s(on[a-z]+|style)\s*=`).MatchString(html) {
		t.Errorf("index.html has an event-handler or style attribute")
	}
	for _, m := range regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`).FindAllStringSubmatch(html, -1) {
		if _, err := fs.Stat(files, strings.TrimPrefix(m[1], "/ui/")); err != nil {
			t.Errorf("index.html refers to %s, which is not embedded", m[1])
		}
	}
	imp := regexp.MustCompile(`from '\./([^']+)'`)
	for _, n := range assetNames() {
		if !strings.HasSuffix(n, ".js") {
			continue
		}
		b, _ := fs.ReadFile(files, n)
		src := string(b)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write"} {
			if strings.Contains(src, bad) {
				t.Errorf("%s uses %s", n, bad)
			}
		}
		// Nothing is fetched from elsewhere (the SVG namespace is a name, not a fetch).
		if u := regexp.MustCompile(`https?://[^'"\s]*`).FindString(strings.ReplaceAll(src, "http://www.w3.org/2000/svg", "")); u != "" {
			t.Errorf("%s names %s: the console uses only its own origin", n, u)
		}
		for _, m := range imp.FindAllStringSubmatch(src, -1) {
			if _, err := fs.Stat(files, m[1]); err != nil {
				t.Errorf("%s imports ./%s, which is not embedded", n, m[1])
			}
		}
	}
}

func TestURLPutsTokenInFragment(t *testing.T) {
	for _, tc := range []struct{ base, tok, want string }{
		{"http://127.0.0.1:8090", "abc", "http://127.0.0.1:8090/ui/#token=abc"},
		{"https://10.0.0.1:8090/", "a+b/c=", "https://10.0.0.1:8090/ui/#token=a%2Bb%2Fc%3D"},
	} {
		if got := URL(tc.base, tc.tok); got != tc.want {
			t.Errorf("URL(%q, %q) = %q, want %q", tc.base, tc.tok, got, tc.want)
		}
	}
}
