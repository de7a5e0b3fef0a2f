package quality

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// truthsFor makes a valid truth for each row: its own label, class 0 of
// its probabilities, or its value plus one.
func truthsFor(rows []Row) []Truth {
	out := make([]Truth, len(rows))
	for i, r := range rows {
		switch r.Kind {
		case KindLabel:
			out[i] = Truth{Label: r.Label}
		case KindProbs:
			out[i] = num(0)
		case KindValue:
			out[i] = num(r.Value + 1)
		}
	}
	return out
}

// TestRawOutputsJoinAsRows: a prediction journaled as its response
// (RawOutput) joins to the same outcomes and metrics as one journaled as
// the rows read on the predict path (the format before recRaw), both in
// one journal, and both survive a restart (a duplicate stays one).
func TestRawOutputsJoinAsRows(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := openTest(t, dir, clk)
	v1s, v2s := ferryResponses()
	type pred struct {
		id    string
		truth []Truth
	}
	var preds []pred
	for _, task := range fuzzTasks {
		for i, body := range append(v1s, v2s...) {
			v1 := i < len(v1s)
			out := &RawOutput{V1: v1, Task: task, Body: body}
			rows, err := out.rows()
			if err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			id := fmt.Sprint(task, "-", i)
			if err := m.Record(&Prediction{Model: "rows", Revision: "r1", ID: id, Time: clk.now().UnixNano(), Rows: rows}); err != nil {
				t.Fatal(err)
			}
			if err := m.Record(&Prediction{Model: "raw", Revision: "r1", ID: id, Time: clk.now().UnixNano(), Output: out}); err != nil {
				t.Fatal(err)
			}
			preds = append(preds, pred{id, truthsFor(rows)})
		}
	}
	half := len(preds) / 2
	feedback := func(ps []pred) []Feedback {
		var fb []Feedback
		for _, p := range ps {
			fb = append(fb, Feedback{ID: p.id, Truth: p.truth})
		}
		return fb
	}
	same := func(m *Monitor, ps []pred, want Outcome) {
		t.Helper()
		rows, raw := m.Join("rows", feedback(ps)), m.Join("raw", feedback(ps))
		if !reflect.DeepEqual(rows, raw) {
			t.Fatalf("rows %+v\nraw %+v", rows, raw)
		}
		for _, r := range raw {
			if r.Outcome != want {
				t.Fatalf("%+v, want %s", r, want)
			}
		}
		a, b := m.Snapshots("rows"), m.Snapshots("raw")
		for i := range a {
			a[i].Model = "raw"
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("snapshots differ:\nrows %+v\nraw  %+v", a, b)
		}
	}
	same(m, preds[:half], Joined)
	m.Close()

	m2 := openTest(t, dir, clk)
	same(m2, preds[:half], Duplicate)
	same(m2, preds[half:], Joined)
	if err := m2.Compact(); err != nil {
		t.Fatal(err)
	}
	m2.Close()
	m3 := openTest(t, dir, clk)
	same(m3, preds, Duplicate)
}

// TestRawOutputNotUnderstood: a response journaled raw whose rows cannot
// be read answers unknown, with the reason, as it did when such a
// prediction was not journaled; it never joins.
func TestRawOutputNotUnderstood(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	m := openTest(t, t.TempDir(), clk)
	for id, body := range map[string]string{"empty": `{"predictions":[]}`, "text": `not json`} {
		if err := m.Record(&Prediction{Model: "iris", Revision: "r1", ID: id, Time: clk.now().UnixNano(), Output: &RawOutput{V1: true, Body: []byte(body)}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		for _, r := range m.Join("iris", []Feedback{{ID: "empty", Truth: []Truth{num(1)}}, {ID: "text", Truth: []Truth{num(1)}}}) {
			if r.Outcome != Unknown || !strings.Contains(r.Error, "not understood") || r.Revision != "" {
				t.Fatalf("%+v", r)
			}
		}
	}
}

// TestMiddlewareJournalsSmallResponsesRaw: a response up to maxRawBytes is
// journaled as it is; a larger one, or a V2 one the head scan leaves to
// encoding/json, as rows; all three join.
func TestMiddlewareJournalsSmallResponsesRaw(t *testing.T) {
	m, err := Open(Config{Dir: t.TempDir(), Horizon: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	big := "[" + strings.Repeat("0.25,", maxRawBytes/5) + "0.25]"
	answers := map[string]string{
		"small":   `{"model_name":"m","id":"small","outputs":[{"name":"y","datatype":"FP64","shape":[2],"data":[1.5,2.5]}]}`,
		"big":     `{"model_name":"m","id":"big","outputs":[{"name":"y","datatype":"FP64","shape":[` + fmt.Sprint(maxRawBytes/5+1) + `],"data":` + big + `}]}`,
		"escaped": `{"model_name":"m","id":"esc\u0061ped","outputs":[{"name":"y","datatype":"FP64","shape":[2],"data":[1.5,2.5]}]}`,
	}
	h := NewHandler(HandlerConfig{Monitor: m}).Middleware(answerByID(answers))
	for id, wantRaw := range map[string]bool{"small": true, "big": false, "escaped": false} {
		if w := do(h, "POST", "/v2/models/m/infer", `{"id":"`+id+`"}`); w.Code != 200 || w.Header().Get(HeaderRequestID) != id {
			t.Fatalf("%s: %d %q", id, w.Code, w.Header().Get(HeaderRequestID))
		}
		m.mu.Lock()
		p, err := m.readLocked(m.index[m.key("m", id)].offset())
		m.mu.Unlock()
		if err != nil || (p.Output != nil) != wantRaw {
			t.Fatalf("%s: raw %v, want %v (%v)", id, p != nil && p.Output != nil, wantRaw, err)
		}
		n := 2
		if id == "big" {
			n = maxRawBytes/5 + 1
		}
		truth := make([]Truth, n)
		for i := range truth {
			truth[i] = num(1)
		}
		if r := m.Join("m", []Feedback{{ID: id, Truth: truth}}); r[0].Outcome != Joined {
			t.Fatalf("%s: %+v", id, r)
		}
	}
}

// answerByID answers a V2 infer request with answers[the request's id].
func answerByID(answers map[string]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answers[req.ID])
	})
}
