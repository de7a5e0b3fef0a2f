package router

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/quality"
)

// qualityReplica is a real replica on loopback: a predictor answering V1
// predict with the class label it is given, behind the quality middleware
// with its own journal, as ferry serve --quality-dir runs it.
func qualityReplica(t *testing.T, revision string, label int) string {
	t.Helper()
	m, err := quality.Open(quality.Config{Dir: t.TempDir(), Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	predict := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"predictions":[%d]}`, label)
	})
	h := quality.NewHandler(quality.HandlerConfig{Monitor: m, Revision: revision}).Middleware(predict)
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func post(t *testing.T, h http.Handler, path, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("POST", "http://ingress"+path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestFeedbackFansOutToTheReplicaThatPredicted(t *testing.T) {
	r := New("example.com", nil)
	// Revision 1 has two replicas, revision 2 one; a transformer in front
	// must not receive feedback.
	r1a, r1b, r2 := qualityReplica(t, "iris-00001", 1), qualityReplica(t, "iris-00001", 1), qualityReplica(t, "iris-00002", 2)
	tr := backend(t, "transformer")
	if err := r.Update(&Table{Domain: "example.com", Services: []*Service{{Name: "iris", Namespace: "default", Components: map[string]*Component{
		Predictor: {Targets: []Target{
			{Revision: "iris-00001", Percent: 50, Backends: []string{r1a, r1b}},
			{Revision: "iris-00002", Percent: 50, Backends: []string{r2}, Latest: true},
		}},
		Transformer: {Targets: []Target{{Revision: "iris-transformer-00001", Percent: 100, Backends: []string{tr}}}},
	}}}}); err != nil {
		t.Fatal(err)
	}
	// Predict on each replica directly (the transformer would otherwise
	// answer): ids 0..29, revision known from the answer.
	byID := map[string]string{}
	for i := range 30 {
		be := []string{r1a, r1b, r2}[i%3]
		id := fmt.Sprintf("req-%d", i)
		req, _ := http.NewRequest("POST", "http://"+be+"/v1/models/iris:predict", strings.NewReader(`{"instances":[[1]]}`))
		req.Header.Set("X-Request-Id", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		byID[id] = map[string]string{r1a: "iris-00001", r1b: "iris-00001", r2: "iris-00002"}[be]
	}
	var batch []string
	for i := range 30 {
		batch = append(batch, fmt.Sprintf(`{"id":"req-%d","truth":1}`, i))
	}
	batch = append(batch, `{"id":"req-0","truth":1}`, `{"id":"never","truth":1}`, `{"id":"req-1","truth":[1,2]}`)
	rec := post(t, r, "/v1/models/iris:feedback", "["+strings.Join(batch, ",")+"]")
	if rec.Code != http.StatusOK {
		t.Fatalf("feedback: %d %s", rec.Code, rec.Body)
	}
	var got quality.FeedbackResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := quality.Counts{Received: 33, Joined: 30, Duplicate: 2, Unknown: 1}
	if got.Counts != want {
		t.Errorf("counts %+v, want %+v", got.Counts, want)
	}
	for i, res := range got.Outcomes[:30] {
		if res.Outcome != quality.Joined || res.Revision != byID[res.ID] {
			t.Errorf("record %d: %+v, want joined in %s", i, res, byID[res.ID])
		}
	}
	// req-1 was joined in this batch already: a duplicate, not invalid.
	if o := got.Outcomes[32].Outcome; o != quality.Duplicate {
		t.Errorf("second feedback for req-1: %s, want duplicate", o)
	}
	if c := r.FeedbackCounts("default", "iris"); c != want {
		t.Errorf("ingress counts %+v, want %+v", c, want)
	}
	// V2 route, by Host, and a body every replica refuses.
	req := httptest.NewRequest("POST", "http://iris.default.example.com/v2/models/iris/feedback", strings.NewReader(`{"id":"x"}`))
	req.Host = "iris.default.example.com"
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "truth") {
		t.Errorf("bad body: %d %s, want the replicas' 400 naming truth", w.Code, w.Body)
	}

	reps := r.PredictorReplicas()
	if len(reps) != 2 || len(reps[0].Backends)+len(reps[1].Backends) != 3 {
		t.Errorf("predictor replicas %+v, want two revisions with three replicas", reps)
	}

	// The model's quality through the ingress: each revision's windows
	// merged over its replicas (revision 1 answered 1 for truth 1 on two
	// replicas, revision 2 answered 2).
	req = httptest.NewRequest("GET", "http://iris.default.example.com/v2/models/iris/quality", nil)
	req.Host = "iris.default.example.com"
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	var q IngressQuality
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &q) != nil {
		t.Fatalf("quality: %d %s", w.Code, w.Body)
	}
	byRev := map[string]quality.RevisionQuality{}
	for _, rq := range q.Revisions {
		byRev[rq.Revision] = rq
	}
	if q.Service != "iris" || q.Model != "iris" || len(q.Revisions) != 2 {
		t.Fatalf("quality = %+v, want iris's two revisions", q)
	}
	if r1 := byRev["iris-00001"]; r1.Replicas != 2 || r1.Labelled != 20 || r1.Classification == nil || r1.Classification.Accuracy != 1 {
		t.Errorf("revision 1 = %+v, want 20 labelled rows over 2 replicas at accuracy 1", r1)
	}
	if r2 := byRev["iris-00002"]; r2.Replicas != 1 || r2.Labelled != 10 || r2.Classification == nil || r2.Classification.Accuracy != 0 {
		t.Errorf("revision 2 = %+v, want 10 labelled rows on 1 replica at accuracy 0", r2)
	}
	req = httptest.NewRequest("GET", "http://iris.default.example.com/v2/models/other/quality", nil)
	req.Host = "iris.default.example.com"
	w = httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "quality monitoring") {
		t.Errorf("quality of a model no replica reports: %d %s", w.Code, w.Body)
	}
}

func TestFeedbackWithoutQualityMonitoring(t *testing.T) {
	r := New("example.com", nil)
	if err := r.Update(&Table{Domain: "example.com", Services: []*Service{{Name: "m", Namespace: "default", Components: map[string]*Component{
		Predictor: {Targets: []Target{{Revision: "m-00001", Percent: 100, Backends: []string{backend(t, "plain")}}}},
	}}}}); err != nil {
		t.Fatal(err)
	}
	rec := post(t, r, "/v1/models/m:feedback", `{"id":"a","truth":1}`)
	if rec.Code != http.StatusBadGateway || !strings.Contains(rec.Body.String(), "quality monitoring is off") {
		t.Errorf("feedback to a replica without quality: %d %s", rec.Code, rec.Body)
	}
	if rec := post(t, r, "/v1/models/nosuch:feedback", `{"id":"a","truth":1}`); rec.Code != http.StatusNotFound {
		t.Errorf("feedback for an unknown service: %d %s", rec.Code, rec.Body)
	}
}
