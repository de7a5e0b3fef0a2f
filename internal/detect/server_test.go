package detect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/detect/drift"
	"github.com/ferryserve/ferry/internal/detect/outlier"
	"github.com/ferryserve/ferry/internal/reqlog"
)

// replySink collects the reply CloudEvents the detector sends.
type replySink struct {
	srv *httptest.Server
	ch  chan reply
}

type reply struct {
	id, typ, svc string
	body         map[string]map[string]any
}

func newReplySink(t *testing.T) *replySink {
	s := &replySink{ch: make(chan reply, 100)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("reply body %q: %v", b, err)
		}
		s.ch <- reply{id: r.Header.Get("Ce-Id"), typ: r.Header.Get("Ce-Type"), svc: r.Header.Get("Ce-Inferenceservicename"), body: body}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *replySink) next(t *testing.T) reply {
	t.Helper()
	select {
	case r := <-s.ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no reply event within 20 s")
		return reply{}
	}
}

func gaussRows(rng *rand.Rand, n, d int, shift float64) [][]float64 {
	rows := make([][]float64, n)
	for i := range rows {
		r := make([]float64, d)
		for j := range r {
			r[j] = rng.NormFloat64()
		}
		r[0] += shift
		rows[i] = r
	}
	return rows
}

func postEvent(t *testing.T, url, id, typ string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Source", "test")
	req.Header.Set("Ce-Inferenceservicename", "iris")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func instances(rows [][]float64) []byte {
	b, _ := json.Marshal(map[string]any{"instances": rows})
	return b
}

func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, hs
}

func TestOutlierReply(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	det, err := outlier.NewMahalanobis(outlier.MahalanobisConfig{Reference: gaussRows(rng, 500, 3, 0)})
	if err != nil {
		t.Fatal(err)
	}
	sink := newReplySink(t)
	_, hs := newTestServer(t, Config{Outlier: det, ReplyURL: sink.srv.URL})
	resp := postEvent(t, hs.URL, "ev-1", TypeRequest, instances([][]float64{{0.1, -0.2, 0.3}, {9, 9, 9}}))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := sink.next(t)
	if r.id != "ev-1" || r.typ != TypeOutlier || r.svc != "iris" {
		t.Errorf("reply headers %+v", r)
	}
	flags := r.body["data"]["is_outlier"].([]any)
	if len(flags) != 2 || flags[0].(float64) != 0 || flags[1].(float64) != 1 {
		t.Errorf("is_outlier %v", flags)
	}
	if len(r.body["data"]["instance_score"].([]any)) != 2 || r.body["meta"]["name"] != "Mahalanobis" {
		t.Errorf("body %v", r.body)
	}
}

func TestBadEventsGetClearErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	det, _ := drift.NewTabular(drift.TabularConfig{Reference: gaussRows(rng, 100, 3, 0)})
	_, hs := newTestServer(t, Config{Drift: det, MaxBodyBytes: 1 << 10})
	post := func(hdr map[string]string, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, hs.URL, strings.NewReader(body))
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "x", "Ce-Type": TypeRequest} {
			req.Header.Set(k, v)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		hdr  map[string]string
		body string
		code int
		msg  string
	}{
		{nil, `{"instances": [[1,2,3]]}`, 200, "counted"},
		{map[string]string{"Ce-Type": TypeResponse}, `{"predictions": [1]}`, 200, ""},
		{map[string]string{"Ce-Id": ""}, `{"instances": [[1,2,3]]}`, 400, "ce-id"},
		{map[string]string{"Ce-Specversion": "0.3"}, `{"instances": [[1,2,3]]}`, 400, "specversion"},
		{map[string]string{"Ce-Type": "com.example"}, `{"instances": [[1,2,3]]}`, 400, "ce-type"},
		{nil, `{"instances": [[1,2]]}`, 400, "features"},
		{nil, `{"instances": "x"}`, 400, "instances"},
		{nil, `not json`, 400, "bad event body"},
		{nil, `{"instances": [[1,2,3],[1,2]]}`, 400, "instance 1"},
		{nil, `{"instances": [` + strings.Repeat("[1,2,3],", 200) + `[1,2,3]]}`, 413, "too large"},
	} {
		code, msg := post(c.hdr, c.body)
		if code != c.code || !strings.Contains(msg, c.msg) {
			t.Errorf("%v %.40q: %d %q, want %d containing %q", c.hdr, c.body, code, msg, c.code, c.msg)
		}
	}
}

func TestTimeWindowCloses(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	det, _ := drift.NewTabular(drift.TabularConfig{Reference: gaussRows(rng, 200, 2, 0)})
	sink := newReplySink(t)
	s, hs := newTestServer(t, Config{Drift: det, ReplyURL: sink.srv.URL, WindowSize: 1000, WindowDuration: time.Minute})
	postEvent(t, hs.URL, "a", TypeRequest, instances(gaussRows(rng, 50, 2, 3)))
	postEvent(t, hs.URL, "b", TypeRequest, instances(gaussRows(rng, 50, 2, 3)))
	s.flushExpired(context.Background(), time.Now()) // not yet a minute old
	select {
	case r := <-sink.ch:
		t.Fatalf("early reply %+v", r)
	default:
	}
	s.flushExpired(context.Background(), time.Now().Add(time.Minute))
	r := sink.next(t)
	if r.id != "b" || r.typ != TypeDrift || r.body["data"]["is_drift"].(float64) != 1 {
		t.Errorf("reply %+v", r)
	}
}

// TestEndToEnd wires a model server through Ferry's request logger to the
// detector, as `logger: {mode: all, url: <detector>}` does, shifts the
// traffic, and waits for the drift verdicts at the reply sink.
func TestEndToEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const d, win = 4, 200
	det, err := drift.NewTabular(drift.TabularConfig{Reference: gaussRows(rng, 1000, d, 0)})
	if err != nil {
		t.Fatal(err)
	}
	sink := newReplySink(t)
	s, err := New(Config{Drift: det, ReplyURL: sink.srv.URL, WindowSize: win, Listener: listen(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	detectorURL := "http://" + s.cfg.Listener.Addr().String()
	wg.Go(func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("detector: %v", err)
		}
	})

	logSink, err := reqlog.NewSink(detectorURL)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := reqlog.New(reqlog.Config{Sink: logSink, Mode: "all", InferenceService: "iris", Namespace: "default", SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = lg.Run(ctx) })
	model := httptest.NewServer(lg.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"predictions": [0]}`)
	})))
	defer model.Close()

	predict := func(shift float64) {
		for range win / 20 {
			resp, err := http.Post(model.URL+"/v1/models/iris:predict", "application/json", bytes.NewReader(instances(gaussRows(rng, 20, d, shift))))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	predict(0)
	first := sink.next(t)
	predict(1)
	second := sink.next(t)
	if first.typ != TypeDrift || first.svc != "iris" || first.body["data"]["is_drift"].(float64) != 0 {
		t.Errorf("unshifted window: %+v", first)
	}
	if second.body["data"]["is_drift"].(float64) != 1 || len(second.body["data"]["p_val"].([]any)) != d {
		t.Errorf("shifted window: %+v", second)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`ferry_detect_drift{service="default/iris"} 1`,
		`ferry_detect_drift_windows_total{drift="true",service="default/iris"} 1`,
		`ferry_detect_drift_p_value{feature="0",service="default/iris"}`,
		fmt.Sprintf(`ferry_detect_events_total{service="default/iris",type="%s"} %d`, TypeRequest, 2*win/20),
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
