package quality

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/reqlog"
)

// sinkEvent is one CloudEvent as an HTTP sink received it (binary mode).
type sinkEvent struct {
	typ, id, specVersion, contentType string
	data                              []byte
}

// Joined feedback leaves through the request logger as a CloudEvent whose
// ce-id is the prediction's, the same ce-id the logger gave the
// prediction's request and response events, so a sink can join them.
func TestFeedbackBecomesACloudEvent(t *testing.T) {
	events := make(chan sinkEvent, 64)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		events <- sinkEvent{r.Header.Get("Ce-Type"), r.Header.Get("Ce-Id"), r.Header.Get("Ce-Specversion"), r.Header.Get("Content-Type"), b}
	}))
	defer sink.Close()
	s, err := reqlog.NewSink(sink.URL)
	if err != nil {
		t.Fatal(err)
	}
	l, err := reqlog.New(reqlog.Config{Sink: s, SpoolDir: t.TempDir(), Source: "replica-0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { l.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	m, err := Open(Config{Dir: t.TempDir(), Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := NewHandler(HandlerConfig{Monitor: m, Events: LoggerEvents(l)})
	srv := httptest.NewServer(h.Middleware(l.Middleware(fakeServer()))) // as ferry serve chains them
	defer srv.Close()
	post := func(path, body string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return resp
	}
	if got := post("/v2/models/reg/infer", `{"inputs":[],"id":"v2-1"}`).Header.Get(HeaderRequestID); got != "v2-1" {
		t.Fatalf("V2 journaled as %q", got)
	}
	post("/v1/models/cls:predict", `{"instances":[[1],[2]]}`, HeaderRequestID, "v1-1")
	post("/v2/models/reg/feedback", `[{"id":"v2-1","truth":[1.5, 2]},{"id":"nope","truth":1}]`)
	post("/v1/models/cls:feedback", `{"id":"v1-1","truth":[1,0]}`)

	// Request and response of both predictions, and two joined records
	// (not the unknown one); delivery is at least once.
	got := map[[2]string]sinkEvent{}
	timeout := time.After(10 * time.Second)
	for len(got) < 6 {
		select {
		case ev := <-events:
			got[[2]string{ev.typ, ev.id}] = ev
		case <-timeout:
			t.Fatalf("sink has %d distinct events: %v", len(got), got)
		}
	}
	for _, id := range []string{"v2-1", "v1-1"} {
		for _, typ := range []string{reqlog.TypeRequest, reqlog.TypeResponse} {
			if _, ok := got[[2]string{typ, id}]; !ok {
				t.Errorf("no %s event with ce-id %s: %v", typ, id, got)
			}
		}
	}
	for id, want := range map[string]string{
		"v2-1": `{"id":"v2-1","model":"reg","truth":[1.5,2],"outcome":"joined","revision":"3"}`,
		"v1-1": `{"id":"v1-1","model":"cls","truth":[1,0],"outcome":"joined","revision":"default"}`,
	} {
		ev, ok := got[[2]string{EventTypeFeedback, id}]
		if !ok {
			t.Fatalf("no feedback event with ce-id %s: %v", id, got)
		}
		if ev.specVersion != "1.0" || ev.contentType != "application/json" || string(ev.data) != want {
			t.Errorf("feedback event %s: %+v %s; want data %s", id, ev, ev.data, want)
		}
		var fe FeedbackEvent
		if err := json.Unmarshal(ev.data, &fe); err != nil || fe.ID != id {
			t.Errorf("feedback event data %s: %v", ev.data, err)
		}
	}
	if _, ok := got[[2]string{EventTypeFeedback, "nope"}]; ok {
		t.Error("unknown feedback was emitted")
	}
}
