// Package console owns Ferry's web console: the page at /ui that shows the
// services of a ferry up, their revisions, traffic, rollouts, replicas,
// events, logs, TrainedModels and per-revision request, error and latency
// charts, steers rollouts, and sends test requests (through the
// management API's …/infer route) with their explanations as a chart.
//
// The page is plain HTML, CSS and JavaScript modules embedded in the
// binary: nothing is built by a JavaScript toolchain and nothing is fetched
// at run time but the management API of the server that served it. The
// static files need no token (they hold no data); every API call the page
// makes carries the bearer token, which reaches the page in the URL's
// fragment (never sent to a server, so never in a log) and is kept in the
// tab's sessionStorage.
package console

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
)

// Path is where the console is mounted on the management address.
const Path = "/ui"

// RevisionMetricsPath is where the page reads each revision's cumulative
// request counters, as the Prometheus text format of RevisionFamily
// (labels namespace, revision, response_code_class and, on buckets, le):
// `ferry up` serves its ingress's histogram there, the operator the
// pods' histograms summed by Prometheus.
const RevisionMetricsPath = "/api/v1/revision-metrics"

// RevisionFamily is the histogram the page reads at RevisionMetricsPath.
const RevisionFamily = "ferry_revision_request_duration_seconds"

//go:embed static
var static embed.FS

// files is the embedded tree rooted at static/.
var files = func() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}()

// ContentSecurityPolicy allows the page only its own scripts, styles and
// images and connections to its own origin: no inline script, no eval, no
// framing, no forms posted elsewhere.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// assetNames lists the embedded files by name (index.html, app.js, ...).
func assetNames() []string {
	var names []string
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	slices.Sort(names)
	return names
}

// OpenRoutes lists the "GET /path" pairs of the static files, for the
// management API guard's Open list: exactly these and nothing under them
// is served without a token.
func OpenRoutes() []string {
	routes := []string{"GET " + Path, "GET " + Path + "/"}
	for _, n := range assetNames() {
		routes = append(routes, "GET "+Path+"/"+n)
	}
	return routes
}

// Handler serves the console's static files under Path. Mount it on the
// management API's mux for the patterns "GET /ui" and "GET /ui/".
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, Path), "/")
		if name == "" {
			name = "index.html"
		}
		if name != path.Clean(name) || strings.HasPrefix(name, ".") {
			http.NotFound(w, r)
			return
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		setSecurityHeaders(h)
		h.Set("Content-Type", contentType(name))
		// The files change only with the binary; revalidation is cheap on
		// loopback and never serves a page of an older ferry.
		h.Set("Cache-Control", "no-cache")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b)
	})
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// URL is the console's address on the management API at base
// (http://127.0.0.1:8090) with the token in the fragment, which the
// browser keeps to itself.
func URL(base, token string) string {
	return strings.TrimSuffix(base, "/") + Path + "/#token=" + url.QueryEscape(token)
}

// InferPath is the model path of the console's test request to service
// from the request's query: protocol v1 (default) or v2, verb predict
// (default) or explain, model (default: the service's name).
func InferPath(q url.Values, service string) (string, error) {
	model := q.Get("model")
	if model == "" {
		model = service
	}
	verb := q.Get("verb")
	if verb == "" {
		verb = "predict"
	}
	if verb != "predict" && verb != "explain" {
		return "", fmt.Errorf("verb %q: want predict or explain", verb)
	}
	m := url.PathEscape(model)
	switch p := q.Get("protocol"); p {
	case "", "v1":
		return "/v1/models/" + m + ":" + verb, nil
	case "v2":
		if verb == "predict" {
			return "/v2/models/" + m + "/infer", nil
		}
		return "/v2/models/" + m + "/explain", nil
	default:
		return "", fmt.Errorf("protocol %q: want v1 or v2", p)
	}
}

// Register mounts Handler on mux at Path and everything under it.
func Register(mux *http.ServeMux) {
	h := Handler()
	mux.Handle("GET "+Path, h)
	mux.Handle("GET "+Path+"/", h)
}
