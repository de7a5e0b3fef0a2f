package fairness

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/detect"
)

func newWindowServer(t *testing.T, size, maxPending int) (*httptest.Server, *Windows) {
	t.Helper()
	c := ageConfig(t)
	win, err := NewWindows(WindowConfig{Metrics: c, Size: size, MaxPending: maxPending})
	if err != nil {
		t.Fatal(err)
	}
	h, err := Handler(HandlerConfig{Metrics: c, ModelName: "m", Windows: win})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, win
}

func sendEvent(t *testing.T, url, id, typ, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", id)
	req.Header.Set("Ce-Type", typ)
	req.Header.Set("Ce-Inferenceservicename", "credit")
	req.Header.Set("Ce-Namespace", "ns")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Four request/response pairs of two instances each, some responses first,
// fill one window of 8: the same data as TestDatasetByHand.
func TestWindowsJoinAndGauges(t *testing.T) {
	srv, win := newWindowServer(t, 8, 100)
	rows := [][2]string{
		{`{"instances": [[1,0],[1,1]]}`, `{"predictions": [1,1]}`},
		{`{"instances": [[1,2],[1,3]]}`, `{"predictions": [[1],[0]]}`},
		{`{"instances": [[0,10],[0,11]]}`, `{"outputs": [{"name": "y", "shape": [2], "datatype": "FP32", "data": [1,0]}]}`},
		{`{"inputs": [{"name": "x", "shape": [2,2], "datatype": "FP32", "data": [0,12,0,13]}]}`, `{"predictions": [0,0]}`},
	}
	for i, p := range rows {
		id := fmt.Sprint("ev-", i)
		first, second := [2]string{detect.TypeRequest, p[0]}, [2]string{detect.TypeResponse, p[1]}
		if i%2 == 1 {
			first, second = second, first
		}
		for _, ev := range [][2]string{first, second} {
			if code, body := sendEvent(t, srv.URL, id, ev[0], ev[1]); code != http.StatusOK {
				t.Fatalf("event %s %s: %d %s", id, ev[0], code, body)
			}
		}
	}
	if got := gauge(t, win, "ferry_fairness_windows_total"); got != 1 {
		t.Fatalf("windows evaluated = %v, want 1", got)
	}
	if got := gauge(t, win, "ferry_fairness_statistical_parity_difference"); !near(got, -0.5) {
		t.Errorf("statistical_parity_difference gauge = %v, want -0.5", got)
	}
	if got := gauge(t, win, "ferry_fairness_disparate_impact"); !near(got, 1.0/3) {
		t.Errorf("disparate_impact gauge = %v, want 1/3", got)
	}
	if ev, inst := win.Pending(); ev != 0 || inst != 0 {
		t.Errorf("pending %d events, %d instances; want none", ev, inst)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `ferry_fairness_disparate_impact{service="ns/credit"} 0.3333333333333333`) {
		t.Errorf("/metrics lacks the disparate impact gauge:\n%s", b)
	}
}

func TestWindowsRejectsAndBounds(t *testing.T) {
	srv, win := newWindowServer(t, 100, 2)
	for _, tc := range []struct {
		name, typ, body, want string
	}{
		{"wrong width", detect.TypeRequest, `{"instances": [[1,2,3]]}`, "want 2"},
		{"third label", detect.TypeResponse, `{"predictions": [0.7]}`, "predictions[0] is 0.7"},
		{"no predictions", detect.TypeResponse, `{"foo": 1}`, "neither"},
		{"bad type", "org.example", `{}`, "ce-type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := sendEvent(t, srv.URL, "x", tc.typ, tc.body)
			if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s, want 400 containing %q", code, body, tc.want)
			}
		})
	}
	// Three unjoined requests with a bound of two: the oldest is dropped.
	for i := range 3 {
		if code, body := sendEvent(t, srv.URL, fmt.Sprint("p", i), detect.TypeRequest, `{"instances": [[1,0]]}`); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
	}
	if ev, _ := win.Pending(); ev != 2 {
		t.Errorf("pending %d, want 2", ev)
	}
	if got := gauge(t, win, "ferry_fairness_unjoined_dropped_total"); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
	// The partner of a dropped request now waits on its own.
	sendEvent(t, srv.URL, "p0", detect.TypeResponse, `{"predictions": [1]}`)
	if _, inst := win.Pending(); inst != 0 {
		t.Errorf("open window has %d instances, want 0", inst)
	}
	// A mismatched pair is refused, naming the event.
	code, body := sendEvent(t, srv.URL, "p2", detect.TypeResponse, `{"predictions": [1, 0]}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "event p2: 1 instances and 2 predictions") {
		t.Errorf("mismatch: %d %s", code, body)
	}
}

// gauge reads a metric of service ns/credit from the registry (NaN when
// absent).
func gauge(t *testing.T, win *Windows, name string) float64 {
	t.Helper()
	mfs, err := win.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == "ns/credit" {
					if g := m.GetGauge(); g != nil {
						return g.GetValue()
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return math.NaN()
}
