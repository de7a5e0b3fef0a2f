package mgmt

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// fakeAPI answers like the management API: it checks the request line,
// the bearer token and the body's content type, then writes its canned
// status and body.
type fakeAPI struct {
	t            *testing.T
	method, path string // want; path includes the query
	status       int
	body         string
	gotBody      string
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != f.method || r.URL.RequestURI() != f.path {
		f.t.Errorf("request %s %s; want %s %s", r.Method, r.URL.RequestURI(), f.method, f.path)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer tok" {
		f.t.Errorf("Authorization %q", got)
	}
	b, _ := io.ReadAll(r.Body)
	f.gotBody = string(b)
	if len(b) > 0 && r.Header.Get("Content-Type") != "application/yaml" {
		f.t.Errorf("Content-Type %q for a body", r.Header.Get("Content-Type"))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	_, _ = io.WriteString(w, f.body)
}

func TestClientMethods(t *testing.T) {
	since := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		method, path string
		status       int
		body         string
		call         func(context.Context, *Client) (any, error)
		want         any
		wantStatus   int // non-zero: want *Error with this status
	}{
		{
			name: "apply", method: "POST", path: "/api/v1/apply", status: 200,
			body: `[{"kind":"InferenceService","namespace":"default","name":"iris","action":"created"}]`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Apply(ctx, []byte("kind: InferenceService\n"))
			},
			want: []ApplyResult{{Kind: "InferenceService", Namespace: "default", Name: "iris", Action: "created"}},
		},
		{
			name: "apply refused", method: "POST", path: "/api/v1/apply", status: 400,
			body: `{"error":"spec.predictor: exactly one framework"}`,
			call: func(ctx context.Context, c *Client) (any, error) { return c.Apply(ctx, []byte("x")) },
			want: "spec.predictor: exactly one framework", wantStatus: 400,
		},
		{
			name: "list one namespace", method: "GET", path: "/api/v1/inferenceservices?namespace=team+a", status: 200,
			body: `{"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				items, err := c.List(ctx, InferenceServices, "team a")
				return len(items), err
			},
			want: 2,
		},
		{
			name: "list every namespace", method: "GET", path: "/api/v1/trainedmodels", status: 200, body: `{"items":[]}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				items, err := c.List(ctx, TrainedModels, "")
				return len(items), err
			},
			want: 0,
		},
		{
			name: "get raw", method: "GET", path: "/api/v1/namespaces/default/trainedmodels/tm-iris", status: 200,
			body: `{"metadata":{"name":"tm-iris"}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				b, err := c.Get(ctx, TrainedModels, "default", "tm-iris")
				return string(b), err
			},
			want: `{"metadata":{"name":"tm-iris"}}`,
		},
		{
			name: "get not found", method: "GET", path: "/api/v1/namespaces/default/inferenceservices/nope", status: 404,
			body: `{"error":"not found"}`,
			call: func(ctx context.Context, c *Client) (any, error) { return c.InferenceService(ctx, "default", "nope") },
			want: "not found", wantStatus: 404,
		},
		{
			name: "typed trained model", method: "GET", path: "/api/v1/namespaces/ns/trainedmodels/m", status: 200,
			body: `{"metadata":{"name":"m"},"spec":{"inferenceService":"mms","model":{"storageUri":"file:///x","framework":"sklearn","memory":"1Mi"}}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				tm, err := c.TrainedModel(ctx, "ns", "m")
				if err != nil {
					return nil, err
				}
				return tm.Spec.InferenceService, nil
			},
			want: "mms",
		},
		{
			name: "name is escaped", method: "DELETE", path: "/api/v1/namespaces/default/inferenceservices/a%2Fb", status: 404,
			body: `{"error":"not found"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.Delete(ctx, InferenceServices, "default", "a/b")
			},
			want: "not found", wantStatus: 404,
		},
		{
			name: "delete", method: "DELETE", path: "/api/v1/namespaces/default/trainedmodels/m", status: 200, body: `{"deleted":"default/m"}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return nil, c.Delete(ctx, TrainedModels, "default", "m")
			},
		},
		{
			name: "revisions", method: "GET", path: "/api/v1/namespaces/default/inferenceservices/iris/revisions", status: 200,
			body: `{"items":[{"name":"iris-predictor-00001","component":"predictor","number":1,"hash":"h","created":"2025-03-01T12:00:00Z"}]}`,
			call: func(ctx context.Context, c *Client) (any, error) { return c.Revisions(ctx, "default", "iris") },
			want: []Revision{{Name: "iris-predictor-00001", Component: "predictor", Number: 1, Hash: "h", Created: since}},
		},
		{
			name: "events", method: "GET", path: "/api/v1/namespaces/default/inferenceservices/iris/events", status: 200,
			body: `{"items":[{"time":"2025-03-01T12:00:00Z","type":"Normal","reason":"Applied","message":"created"}]}`,
			call: func(ctx context.Context, c *Client) (any, error) { return c.Events(ctx, "default", "iris") },
			want: []Event{{Time: since, Type: "Normal", Reason: "Applied", Message: "created"}},
		},
		{
			name: "replicas", method: "GET", path: "/api/v1/namespaces/default/inferenceservices/iris/replicas", status: 200,
			body: `{"revisions":{"r1":[{"name":"r1-0","phase":"Ready","pid":42,"restarts":1,"since":"2025-03-01T12:00:00Z","httpPort":9000,"grpcPort":9001}]},"desired":{"r1":2},"panic":{"r1":true}}`,
			call: func(ctx context.Context, c *Client) (any, error) { return c.Replicas(ctx, "default", "iris") },
			want: &Replicas{
				Revisions: map[string][]Replica{"r1": {{Name: "r1-0", Phase: "Ready", PID: 42, Restarts: 1, Since: since, HTTPPort: 9000, GRPCPort: 9001}}},
				Desired:   map[string]int{"r1": 2}, Panic: map[string]bool{"r1": true},
			},
		},
		{
			name: "logs", method: "GET", path: "/api/v1/namespaces/default/inferenceservices/iris/logs?component=transformer&tail=5", status: 200,
			body: `{"replicas":{"r1-0":["a","b"]}}`,
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.Logs(ctx, "default", "iris", LogOptions{Component: "transformer", Tail: 5})
			},
			want: map[string][]string{"r1-0": {"a", "b"}},
		},
		{
			name: "unauthorized keeps its status", method: "GET", path: "/api/v1/inferenceservices", status: 401,
			body: `{"error":"missing or wrong API token"}`,
			call: func(ctx context.Context, c *Client) (any, error) { return c.List(ctx, InferenceServices, "") },
			want: "unauthorized: missing or wrong API token", wantStatus: 401,
		},
		{
			name: "error without a JSON body", method: "GET", path: "/api/v1/inferenceservices", status: 502, body: `bad gateway`,
			call: func(ctx context.Context, c *Client) (any, error) { return c.List(ctx, InferenceServices, "") },
			want: "GET /api/v1/inferenceservices: 502 Bad Gateway", wantStatus: 502,
		},
		{
			name: "undecodable success", method: "GET", path: "/api/v1/namespaces/default/inferenceservices/iris/events", status: 200, body: `{"items":`,
			call: func(ctx context.Context, c *Client) (any, error) { return c.Events(ctx, "default", "iris") },
			want: "GET /api/v1/namespaces/default/inferenceservices/iris/events: decode answer: unexpected end of JSON input",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAPI{t: t, method: tc.method, path: tc.path, status: tc.status, body: tc.body}
			srv := httptest.NewServer(f)
			defer srv.Close()
			got, err := tc.call(t.Context(), NewClient(srv.URL+"/", "tok", srv.Client()))
			if msg, isErr := tc.want.(string); isErr && (tc.wantStatus != 0 || strings.Contains(msg, "decode")) {
				if err == nil || err.Error() != msg {
					t.Fatalf("err = %v; want %q", err, msg)
				}
				var ae *Error
				if tc.wantStatus != 0 && (!errors.As(err, &ae) || ae.Status != tc.wantStatus) {
					t.Fatalf("err = %#v; want *Error with status %d", err, tc.wantStatus)
				}
				if IsNotFound(err) != (tc.wantStatus == 404) {
					t.Fatalf("IsNotFound(%v) = %v", err, IsNotFound(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestClientUnreachable(t *testing.T) {
	addr := closedPort(t)
	_, err := NewClient("http://"+addr, "", nil).List(t.Context(), InferenceServices, "")
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) || IsNotFound(err) {
		t.Fatalf("err = %v; want ErrUnreachable wrapping ECONNREFUSED", err)
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// refusing answers connection refused for its first n requests, then
// passes them on to next.
type refusing struct {
	n     int32
	calls atomic.Int32
	next  http.RoundTripper
}

func (r *refusing) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.calls.Add(1) <= r.n {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	return r.next.RoundTrip(req)
}

type answer int

func (a answer) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: int(a), Body: io.NopCloser(strings.NewReader("{}")), Header: http.Header{}, Request: req}, nil
}

func TestWaitForServer(t *testing.T) {
	tests := []struct {
		name       string
		server     string
		refusals   int32
		max        time.Duration
		wantWaited bool
		wantErr    bool
		wantCalls  int32
	}{
		{"answers at once", "http://127.0.0.1:8090", 0, 5 * time.Second, false, false, 1},
		{"starting server", "http://127.0.0.1:8090", 3, 5 * time.Second, true, false, 4},
		{"localhost too", "http://localhost:8090", 1, 5 * time.Second, true, false, 2},
		{"never starts", "http://[::1]:8090", 1 << 30, 5 * time.Second, true, true, 0},
		{"no wait asked", "http://127.0.0.1:8090", 1 << 30, 0, false, true, 1},
		{"remote server is not waited for", "https://10.1.2.3:8090", 1 << 30, 5 * time.Second, false, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt := &refusing{n: tc.refusals, next: answer(401)}
				c := NewClient(tc.server, "", &http.Client{Transport: rt})
				start := time.Now()
				waited, err := c.WaitForServer(t.Context(), tc.max)
				if waited != tc.wantWaited || (err != nil) != tc.wantErr {
					t.Fatalf("waited %v, err %v; want %v, error %v", waited, err, tc.wantWaited, tc.wantErr)
				}
				if err != nil && (!errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED)) {
					t.Fatalf("err = %v; want ErrUnreachable wrapping ECONNREFUSED", err)
				}
				if took := time.Since(start); took > tc.max {
					t.Fatalf("waited %s, more than %s", took, tc.max)
				}
				if tc.wantCalls != 0 && rt.calls.Load() != tc.wantCalls {
					t.Fatalf("%d requests; want %d", rt.calls.Load(), tc.wantCalls)
				}
				if tc.name == "remote server is not waited for" && rt.calls.Load() != 0 {
					t.Fatalf("%d requests to a remote server; want none", rt.calls.Load())
				}
			})
		})
	}
}

func TestWaitForServerStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		c := NewClient("http://127.0.0.1:8090", "", &http.Client{Transport: &refusing{n: 1 << 30}})
		if _, err := c.WaitForServer(ctx, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v; want the context's deadline", err)
		}
	})
}

func TestWireNames(t *testing.T) {
	// The JSON names are the contract; a renamed field breaks every
	// client in the field.
	b, err := json.Marshal(Replicas{Revisions: map[string][]Replica{"r": {{Name: "n", PID: 1, HTTPPort: 2, GRPCPort: 3, LastExit: "x"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"revisions"`, `"desired"`, `"panic"`, `"name"`, `"phase"`, `"pid"`, `"restarts"`, `"lastExit"`, `"since"`, `"httpPort"`, `"grpcPort"`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("%s lacks %s", b, k)
		}
	}
}
