package fairness

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func newTestServer(t *testing.T, maxBody int64) *httptest.Server {
	t.Helper()
	h, err := Handler(HandlerConfig{Metrics: ageConfig(t), ModelName: "german-credit", MaxBodyBytes: maxBody, MaxInstances: 100})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return resp.StatusCode, out
}

// The KServe contract: instances and outputs in, the outputs back as
// predictions and the metrics under AIF360's names out.
func TestHandlerKServeContract(t *testing.T) {
	srv := newTestServer(t, 0)
	body := `{"instances": [[1,0],[1,1],[1,2],[1,3],[0,10],[0,11],[0,12],[0,13]],
	          "outputs": [1,1,1,0,[1],0,0,0]}`
	for _, verb := range []string{"predict", "explain"} {
		code, out := post(t, srv.URL+"/v1/models/german-credit:"+verb, body)
		if code != http.StatusOK {
			t.Fatalf(":%s: status %d, body %v", verb, code, out)
		}
		if len(out) != 2 {
			t.Errorf(":%s: top-level keys %v, want predictions and metrics", verb, out)
		}
		preds, _ := out["predictions"].([]any)
		if len(preds) != 8 || preds[0] != 1.0 || preds[3] != 0.0 {
			t.Errorf(":%s: predictions %v", verb, out["predictions"])
		}
		m, _ := out["metrics"].(map[string]any)
		want := map[string]float64{
			"base_rate": 0.5, "num_instances": 8, "num_positives": 4, "num_negatives": 4,
			"statistical_parity_difference": -0.5, "disparate_impact": 1.0 / 3,
			"base_rate_privileged": 0.75, "base_rate_unprivileged": 0.25,
		}
		for k, w := range want {
			if g, ok := m[k].(float64); !ok || !near(g, w) {
				t.Errorf(":%s: metrics[%s] = %v, want %v", verb, k, m[k], w)
			}
		}
		if c, ok := m["consistency"].([]any); !ok || len(c) != 1 {
			t.Errorf(":%s: consistency %v, want a one-element list", verb, m["consistency"])
		}
		if _, ok := m["accuracy"]; ok {
			t.Errorf(":%s: accuracy without labels", verb)
		}
	}
}

func TestHandlerLabelsAndUndefined(t *testing.T) {
	srv := newTestServer(t, 0)
	// No favourable privileged outcome: disparate impact is undefined (null).
	code, out := post(t, srv.URL+"/v1/models/german-credit:predict",
		`{"instances": [[1,0],[1,1],[0,0],[0,1]], "outputs": [0,0,1,0], "labels": [1,0,1,1]}`)
	if code != http.StatusOK {
		t.Fatalf("status %d, body %v", code, out)
	}
	m := out["metrics"].(map[string]any)
	if v, ok := m["disparate_impact"]; !ok || v != nil {
		t.Errorf("disparate_impact %v, want null", v)
	}
	// Privileged: truth 1,0, pred 0,0 → TPR 0, FPR 0, acc 1/2.
	// Unprivileged: truth 1,1, pred 1,0 → TPR 1/2, FPR undefined (no negatives), acc 1/2.
	if v := m["equal_opportunity_difference"]; v != 0.5 {
		t.Errorf("equal_opportunity_difference %v, want 0.5", v)
	}
	if v, ok := m["average_odds_difference"]; !ok || v != nil {
		t.Errorf("average_odds_difference %v, want null (no unprivileged negatives)", v)
	}
	if v := m["accuracy"]; v != 0.5 {
		t.Errorf("accuracy %v, want 0.5", v)
	}
}

func TestHandlerErrors(t *testing.T) {
	srv := newTestServer(t, 256)
	for _, tc := range []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"wrong model", "/v1/models/other:predict", `{}`, 404, `model "other" not found`},
		{"wrong verb", "/v1/models/german-credit:train", `{}`, 404, ":predict or :explain"},
		{"not json", "/v1/models/german-credit:predict", `{`, 400, "body"},
		{"unknown field", "/v1/models/german-credit:predict", `{"instances": [[1,0]], "output": [1]}`, 400, `"output"`},
		{"no instances", "/v1/models/german-credit:predict", `{"outputs": [1]}`, 400, `"instances" is missing`},
		{"no outputs", "/v1/models/german-credit:predict", `{"instances": [[1,0]]}`, 400, `"outputs" is missing`},
		{"short row", "/v1/models/german-credit:predict", `{"instances": [[1]], "outputs": [1]}`, 400, `"instances"[0] has 1 values, want 2`},
		{"null value", "/v1/models/german-credit:predict", `{"instances": [[1,null]], "outputs": [1]}`, 400, `"instances"[0][1] is null`},
		{"output count", "/v1/models/german-credit:predict", `{"instances": [[1,0]], "outputs": [1,0]}`, 400, `"outputs" has 2 values for 1 instances`},
		{"third label", "/v1/models/german-credit:predict", `{"instances": [[1,0]], "outputs": [2]}`, 400, "outputs[0] is 2"},
		{"bad labels", "/v1/models/german-credit:predict", `{"instances": [[1,0]], "outputs": [1], "labels": ["yes"]}`, 400, `"labels"[0] is not a number`},
		{"too big", "/v1/models/german-credit:predict", `{"instances": [` + strings.Repeat("[1,0],", 60) + `[1,0]], "outputs": []}`, 413, "larger than 256 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := post(t, srv.URL+tc.path, tc.body)
			msg, _ := out["error"].(string)
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Errorf("status %d error %q, want %d containing %q", code, msg, tc.code, tc.want)
			}
		})
	}
}

func TestHandlerReadiness(t *testing.T) {
	srv := newTestServer(t, 0)
	for path, want := range map[string]int{"/v1/models/german-credit": 200, "/v1/models/other": 404, "/healthz": 200, "/v1/models": 200} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestDecodeRequestLimit(t *testing.T) {
	body := `{"instances": [[1,0],[0,1],[1,1]], "outputs": [1,0,1]}`
	if _, err := DecodeRequest([]byte(body), 2, 2); err == nil || !strings.Contains(err.Error(), "at most 2") {
		t.Errorf("err = %v, want the instance limit", err)
	}
	req, err := DecodeRequest([]byte(body), 2, 3)
	if err != nil || len(req.Instances) != 3 || req.Outputs[2] != 1 || req.Labels != nil {
		t.Errorf("DecodeRequest = %+v, %v", req, err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"instances": [[1,0],[0,1]], "outputs": [1,[0]], "labels": [0,1]}`))
	f.Add([]byte(`{"instances": [[1,null]], "outputs": [1]}`))
	f.Add([]byte(`{"instances": [], "outputs": []}`))
	f.Add([]byte(`{"instances": [[1e400,0]], "outputs": [[1,2]]}`))
	c := &Config{Features: []string{"a", "b"}, Favorable: 1, Unfavorable: 0,
		Privileged: []Group{{"a": 1}}, Unprivileged: []Group{{"a": 0}}}
	if err := c.Validate(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body, 2, 50)
		if err != nil {
			return
		}
		if len(req.Instances) == 0 || len(req.Instances) > 50 || len(req.Outputs) != len(req.Instances) {
			t.Fatalf("accepted %d instances, %d outputs", len(req.Instances), len(req.Outputs))
		}
		if req.Labels != nil && len(req.Labels) != len(req.Instances) {
			t.Fatalf("accepted %d labels for %d instances", len(req.Labels), len(req.Instances))
		}
		for i, r := range req.Instances {
			if len(r) != 2 {
				t.Fatalf("instance %d has %d values", i, len(r))
			}
		}
		// Whatever decodes must evaluate or fail cleanly, never panic.
		if resp, err := Evaluate(c, req); err == nil {
			if _, err := json.Marshal(resp); err != nil {
				t.Fatalf("response does not encode: %v", err)
			}
		}
	})
}
