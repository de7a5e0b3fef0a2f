package quality

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeServer answers predict requests as Ferry's V1 and V2 handlers do,
// and /metrics with one counter.
func fakeServer() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/models/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"predictions":[[0.1,0.9],[0.8,0.2]]}`)
	})
	mux.HandleFunc("POST /v2/models/{name}/infer", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID string `json:"id"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		if r.PathValue("name") == "broken" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"bad"}`)
			return
		}
		io.WriteString(w, `{"model_name":"reg","model_version":"3","id":"`+req.ID+`","outputs":[{"name":"y","datatype":"FP64","shape":[2],"data":[1.5,2.5]}]}`)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "# HELP ferry_requests_total x\n# TYPE ferry_requests_total counter\nferry_requests_total 7\n")
	})
	return mux
}

func newTestHandler(t *testing.T) (http.Handler, *Monitor) {
	t.Helper()
	m, err := Open(Config{Dir: t.TempDir(), Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return NewHandler(HandlerConfig{Monitor: m, MaxBodyBytes: 1024}).Middleware(fakeServer()), m
}

func do(h http.Handler, method, path, body string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestPredictFeedbackQuality(t *testing.T) {
	h, _ := newTestHandler(t)
	// V1: no id given, one is made and returned.
	w := do(h, "POST", "/v1/models/clf:predict", `{"instances":[[1],[2]]}`)
	id := w.Header().Get(HeaderRequestID)
	if w.Code != 200 || len(id) != 36 || !strings.Contains(w.Body.String(), "predictions") {
		t.Fatalf("predict: %d %q %s", w.Code, id, w.Body)
	}
	// V2: the body's id wins over the header.
	w = do(h, "POST", "/v2/models/reg/infer", `{"id":"body-id","inputs":[]}`, "X-Request-Id", "hdr-id")
	if got := w.Header().Get(HeaderRequestID); got != "body-id" {
		t.Fatalf("V2 id %q", got)
	}
	// A failed prediction is not journaled.
	do(h, "POST", "/v2/models/broken/infer", `{"id":"x"}`)

	w = do(h, "POST", "/v1/models/clf:feedback", `{"id":"`+id+`","truth":[1,1]}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"outcome":"joined"`) {
		t.Fatalf("feedback: %d %s", w.Code, w.Body)
	}
	w = do(h, "POST", "/v2/models/reg/feedback", `[{"id":"body-id","truth":[1,3]},{"id":"body-id","truth":[1,3]},{"id":"x","truth":1}]`)
	var fr FeedbackResponse
	if err := json.Unmarshal(w.Body.Bytes(), &fr); err != nil || fr.Counts.Joined != 1 || fr.Counts.Duplicate != 1 || fr.Counts.Unknown != 1 {
		t.Fatalf("batch feedback: %v %s", err, w.Body)
	}
	if w := do(h, "POST", "/v2/models/broken/feedback", `{"id":"x","truth":1}`); !strings.Contains(w.Body.String(), `"unknown"`) {
		t.Fatalf("failed prediction's feedback: %s", w.Body)
	}

	w = do(h, "GET", "/v2/models/clf/quality", "")
	var q QualityResponse
	if err := json.Unmarshal(w.Body.Bytes(), &q); err != nil || len(q.Revisions) != 1 {
		t.Fatalf("quality: %v %s", err, w.Body)
	}
	c := q.Revisions[0].Classification
	if c == nil || c.Accuracy != 0.5 || c.LogLoss == nil || q.Revisions[0].Revision != "default" {
		t.Fatalf("quality: %s", w.Body)
	}
	w = do(h, "GET", "/v2/models/reg/quality", "")
	if err := json.Unmarshal(w.Body.Bytes(), &q); err != nil || q.Revisions[0].Revision != "3" || q.Revisions[0].Regression.MAE != 0.5 {
		t.Fatalf("regression quality: %s", w.Body)
	}
	if w := do(h, "GET", "/v2/models/none/quality", ""); w.Code != 404 {
		t.Fatalf("quality of an unknown model: %d", w.Code)
	}

	w = do(h, "GET", "/metrics", "")
	for _, want := range []string{"ferry_requests_total 7", `ferry_quality_accuracy{model="clf",revision="default"} 0.5`,
		`ferry_quality_mae{model="reg",revision="3"} 0.5`, `ferry_quality_feedback_total{model="reg",result="duplicate"} 1`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, w.Body)
		}
	}
}

func TestFeedbackErrors(t *testing.T) {
	h, _ := newTestHandler(t)
	for _, tc := range []struct{ body, want string }{
		{``, "empty body"},
		{`{"truth":1}`, "id is missing"},
		{`{"id":"","truth":1}`, "id is empty"},
		{`{"id":"a"}`, "truth is missing"},
		{`{"id":"a","truth":null}`, "truth is missing"},
		{`{"id":"a","truth":{}}`, "truth: want a number or a string"},
		{`{"id":"a","truth":[1,true]}`, "truth: [1]: want a number or a string"},
		{`{"id":"a","truth":1,"label":2}`, `unknown field \"label\"`},
		{`{"id":7,"truth":1}`, "id: want string"},
		{`[{"id":"a","truth":1},{"id":"b"}]`, "[1].truth is missing"},
		{`[]`, "the batch is empty"},
		{`{"id":"a","truth":1} {}`, "data after the record"},
	} {
		w := do(h, "POST", "/v2/models/m/feedback", tc.body)
		if w.Code != 400 || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s: %d %s; want 400 with %q", tc.body, w.Code, w.Body, tc.want)
		}
	}
	if w := do(h, "POST", "/v2/models/m/feedback", `{"id":"`+strings.Repeat("a", 2000)+`","truth":1}`); w.Code != 413 {
		t.Errorf("large body: %d", w.Code)
	}
}

func FuzzDecodeFeedback(f *testing.F) {
	for _, s := range []string{`{"id":"a","truth":1}`, `[{"id":"a","truth":[1,"x"]}]`, `{"id":"a","truth":-1e3}`, `[`, `{"id":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fb, err := DecodeFeedback(b)
		if err != nil {
			if !errors.Is(err, ErrBadFeedback) {
				t.Fatalf("error not ErrBadFeedback: %v", err)
			}
			return
		}
		for _, f := range fb {
			if f.ID == "" || len(f.Truth) == 0 {
				t.Fatalf("accepted %q as %+v", b, f)
			}
		}
	})
}

// Ids Ferry makes are UUIDv4-formatted and differ.
func TestNewIDIsAUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[14] != '4' || id[18] != '-' || !strings.ContainsAny(id[19:20], "89ab") || id[23] != '-' {
			t.Fatalf("id %q is not a UUIDv4", id)
		}
		if strings.Trim(id, "0123456789abcdef-") != "" {
			t.Fatalf("id %q: not lower-case hex", id)
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
	}
}
