package apiauth

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// DefaultMaxBody is the management API's default request body limit: far
// above any real set of manifests, far below what hurts the process.
const DefaultMaxBody = 32 << 20

// Guard checks every management request before its handler runs.
type Guard struct {
	// Token is the bearer token every request must carry (constant-time
	// compare). Empty refuses every guarded request.
	Token string
	// LoopbackOnly refuses Host headers that do not name loopback (DNS
	// rebinding: a page at evil.example resolving to 127.0.0.1).
	LoopbackOnly bool
	// MaxBody bounds request bodies (413 above it); 0 means DefaultMaxBody.
	MaxBody int64
	// MaxBodyFlag names the flag that raises MaxBody, for the 413 message.
	MaxBodyFlag string
	// Open lists "METHOD /path" pairs served without a token (health and
	// metrics: they change nothing and reveal no spec).
	Open []string
}

// Wrap returns next behind the guard.
func (g Guard) Wrap(next http.Handler) http.Handler {
	maxBody := g.MaxBody
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	open := make(map[string]bool, len(g.Open))
	for _, o := range g.Open {
		open[o] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.LoopbackOnly && !loopbackHostHeader(r.Host) {
			deny(w, http.StatusForbidden, fmt.Sprintf("host %q is not a loopback name: the management API on loopback answers only to localhost, 127.0.0.1 or [::1]", r.Host))
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
			deny(w, http.StatusForbidden, fmt.Sprintf("origin %q is not this server: cross-origin requests to the management API are refused", o))
			return
		}
		if open[r.Method+" "+r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		if !g.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
			deny(w, http.StatusUnauthorized, "missing or wrong API token: ferry finds the token of a ferry up started by this user by itself; otherwise pass --token or FERRY_TOKEN (the token is in the server's --data-dir, file "+TokenFile+")")
			return
		}
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
				deny(w, http.StatusUnsupportedMediaType, err.Error())
				return
			}
			if r.ContentLength > maxBody {
				deny(w, http.StatusRequestEntityTooLarge, tooLarge(r.ContentLength, maxBody, g.MaxBodyFlag))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

func (g Guard) authorized(r *http.Request) bool {
	if g.Token == "" {
		return false
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(g.Token)) == 1
}

// TooLargeMessage is the 413 text for a body over limit bytes.
func tooLarge(n, limit int64, flag string) string {
	msg := fmt.Sprintf("request body is over the management API's limit of %d bytes", limit)
	if n > 0 {
		msg = fmt.Sprintf("request body of %d bytes is over the management API's limit of %d bytes", n, limit)
	}
	if flag != "" {
		msg += "; split the manifests into several applies or raise " + flag
	}
	return msg
}

// TooLarge writes the 413 answer for a body that crossed limit while being
// read (http.MaxBytesError), for handlers behind the guard.
func TooLarge(w http.ResponseWriter, limit int64, flag string) {
	deny(w, http.StatusRequestEntityTooLarge, tooLarge(0, limit, flag))
}

var allowedTypes = map[string]bool{
	"application/yaml":   true,
	"application/x-yaml": true,
	"text/yaml":          true,
	"text/x-yaml":        true,
	"application/json":   true,
}

// checkContentType accepts only YAML and JSON: a browser can send
// text/plain, form types or no type at all cross-origin without asking the
// server first (a CORS "simple" request), never these.
func checkContentType(ct string) error {
	if ct == "" {
		return fmt.Errorf("missing Content-Type: send manifests as application/yaml or application/json")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !allowedTypes[mt] {
		return fmt.Errorf("content type %q is not accepted: send manifests as application/yaml or application/json", ct)
	}
	return nil
}

func loopbackHostHeader(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return IsLoopbackHost(host)
}

// sameOrigin reports whether the Origin header names the server the
// request was sent to (a page the server itself serves, such as a console).
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

func deny(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
