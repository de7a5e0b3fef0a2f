package router

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// abRouter serves one service split canary% to "ab-2" (latest) and the
// rest to "ab-1" (prev), with the given affinity.
func abRouter(t *testing.T, canary int, a *Affinity) *Router {
	t.Helper()
	r := New("example.com", nil)
	b1, b2 := backend(t, "ab-1"), backend(t, "ab-2")
	err := r.Update(&Table{Domain: "example.com", Services: []*Service{{
		Name: "ab", Namespace: "default", Affinity: a,
		Components: map[string]*Component{Predictor: {Targets: []Target{
			{Revision: "ab-2", Percent: canary, Latest: true, Backends: []string{b2}},
			{Revision: "ab-1", Tag: "prev", Percent: 100 - canary, Backends: []string{b1}},
		}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func abRequest(t *testing.T, h http.Handler, mod func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("POST", "http://ab.default.example.com/v1/models/ab:predict", strings.NewReader("{}"))
	if mod != nil {
		mod(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	return rec
}

func TestTagHeaderAndRules(t *testing.T) {
	a, err := ParseAffinity(map[string]string{AnnotationRouteRules: "header:x-group=beta=>latest; cookie:exp=old=>prev"})
	if err != nil {
		t.Fatal(err)
	}
	r := abRouter(t, 50, a)
	for range 20 {
		if rev := abRequest(t, r, func(q *http.Request) { q.Header.Set("X-Group", "beta") }).Header().Get(HeaderRevision); rev != "ab-2" {
			t.Fatalf("header rule: %s, want ab-2", rev)
		}
		if rev := abRequest(t, r, func(q *http.Request) { q.AddCookie(&http.Cookie{Name: "exp", Value: "old"}) }).Header().Get(HeaderRevision); rev != "ab-1" {
			t.Fatalf("cookie rule: %s, want ab-1", rev)
		}
		if rev := abRequest(t, r, func(q *http.Request) { q.Header.Set(HeaderTag, "prev") }).Header().Get(HeaderRevision); rev != "ab-1" {
			t.Fatalf("Knative-Serving-Tag: %s, want ab-1", rev)
		}
	}
	// Without a matching rule the split applies: both revisions are drawn.
	seen := map[string]bool{}
	for range 200 {
		seen[abRequest(t, r, func(q *http.Request) { q.Header.Set("X-Group", "alpha") }).Header().Get(HeaderRevision)] = true
	}
	if !seen["ab-1"] || !seen["ab-2"] {
		t.Errorf("a 50/50 split drew only %v in 200 requests", seen)
	}
	// A tag header for a tag that does not exist is an error, not a draw.
	req := httptest.NewRequest("POST", "http://ab.default.example.com/v1/models/ab:predict", strings.NewReader("{}"))
	req.Header.Set(HeaderTag, "nope")
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `no revision tagged \"nope\"`) {
		t.Errorf("unknown tag: %d %s", rec.Code, rec.Body)
	}
}

// TestStickyByKey: a client id always lands on one revision; the share of
// ids on the canary follows its percent; raising the percent only moves
// ids onto the canary.
func TestStickyByKey(t *testing.T) {
	a, err := ParseAffinity(map[string]string{AnnotationAffinity: "header:x-user-id"})
	if err != nil {
		t.Fatal(err)
	}
	at := func(canary int) map[string]string {
		r := abRouter(t, canary, a)
		out := map[string]string{}
		for i := range 400 {
			id := fmt.Sprintf("user-%d", i)
			rev := abRequest(t, r, func(q *http.Request) { q.Header.Set("X-User-Id", id) }).Header().Get(HeaderRevision)
			if again := abRequest(t, r, func(q *http.Request) { q.Header.Set("X-User-Id", id) }).Header().Get(HeaderRevision); again != rev {
				t.Fatalf("%s: %s then %s", id, rev, again)
			}
			out[id] = rev
		}
		return out
	}
	at20, at60 := at(20), at(60)
	count := func(m map[string]string) (n int) {
		for _, rev := range m {
			if rev == "ab-2" {
				n++
			}
		}
		return n
	}
	if n := count(at20); n < 40 || n > 130 {
		t.Errorf("canary at 20 %%: %d of 400 ids, want about 80", n)
	}
	if n := count(at60); n < 190 || n > 290 {
		t.Errorf("canary at 60 %%: %d of 400 ids, want about 240", n)
	}
	for id, rev := range at20 {
		if rev == "ab-2" && at60[id] != "ab-2" {
			t.Errorf("%s was on the canary at 20 %% and left it at 60 %%", id)
		}
	}
}

func TestStickyCookie(t *testing.T) {
	a, err := ParseAffinity(map[string]string{AnnotationAffinity: "cookie"})
	if err != nil {
		t.Fatal(err)
	}
	r := abRouter(t, 50, a)
	name := StickyCookie("default", "ab")
	for range 10 {
		rec := abRequest(t, r, nil)
		rev := rec.Header().Get(HeaderRevision)
		res := http.Response{Header: rec.Header()}
		var got *http.Cookie
		for _, c := range res.Cookies() {
			if c.Name == name {
				got = c
			}
		}
		if got == nil || got.Value != rev || !got.HttpOnly {
			t.Fatalf("first response sets %+v, want %s=%s HttpOnly", got, name, rev)
		}
		for range 10 {
			again := abRequest(t, r, func(q *http.Request) { q.AddCookie(got) })
			if again.Header().Get(HeaderRevision) != rev {
				t.Fatalf("with the cookie: %s, want %s", again.Header().Get(HeaderRevision), rev)
			}
			if again.Header().Get("Set-Cookie") != "" {
				t.Fatalf("cookie set again although it holds: %s", again.Header().Get("Set-Cookie"))
			}
		}
	}
	// A cookie for a revision no longer in the split is drawn again.
	rec := abRequest(t, r, func(q *http.Request) { q.AddCookie(&http.Cookie{Name: name, Value: "ab-0"}) })
	if !strings.Contains(rec.Header().Get("Set-Cookie"), name+"="+rec.Header().Get(HeaderRevision)) {
		t.Errorf("stale cookie: Set-Cookie %q for %s", rec.Header().Get("Set-Cookie"), rec.Header().Get(HeaderRevision))
	}
}

func TestParseAffinity(t *testing.T) {
	for _, tc := range []struct {
		ann  map[string]string
		want string // error substring; "" ok
	}{
		{map[string]string{}, ""},
		{map[string]string{AnnotationAffinity: "cookie"}, ""},
		{map[string]string{AnnotationAffinity: "cookie:session"}, ""},
		{map[string]string{AnnotationAffinity: "header:X-User-Id"}, ""},
		{map[string]string{AnnotationAffinity: "ip"}, "want cookie, header:NAME or cookie:NAME"},
		{map[string]string{AnnotationAffinity: "header:bad name"}, AnnotationAffinity},
		{map[string]string{AnnotationRouteRules: "header:x=1=>latest;;"}, ""},
		{map[string]string{AnnotationRouteRules: "header:x=1"}, "header:NAME=VALUE=>TAG"},
		{map[string]string{AnnotationRouteRules: "query:x=1=>latest"}, AnnotationRouteRules},
		{map[string]string{AnnotationRouteRules: "header:x==>latest"}, "want header"},
	} {
		_, err := ParseAffinity(tc.ann)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.ann, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: %v, want an error with %q", tc.ann, err, tc.want)
		}
	}
}
