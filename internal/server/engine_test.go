package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/server"
)

// testEngine is the HTTP engine startServer gives a server whose Config
// names none; TestOtherEngineConformance switches it.
var testEngine = ""

// TestOtherEngineConformance runs the HTTP conformance tests again on the
// engine that is not the default, so both engines answer the same.
func TestOtherEngineConformance(t *testing.T) {
	other := server.EngineFast
	if server.DefaultHTTPEngine == server.EngineFast {
		other = server.EngineStd
	}
	testEngine = other
	t.Cleanup(func() { testEngine = "" })
	for _, c := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"RESTEndpoints", TestRESTEndpoints},
		{"RepositoryLoadUnloadREST", TestRepositoryLoadUnloadREST},
		{"BinaryExtension", TestBinaryExtension},
		{"BodyLimit", TestBodyLimit},
		{"RequestTimeout", TestRequestTimeout},
		{"GracefulShutdownDrains", TestGracefulShutdownDrains},
		{"RepositoryAPIPolicy", TestRepositoryAPIPolicy},
		{"UnloadedOnlyModelIsNotReady", TestUnloadedOnlyModelIsNotReady},
		{"SlowBodyIsCut", TestSlowBodyIsCut},
		{"FastBodyIsKept", TestFastBodyIsKept},
		{"ClientHangUpCancels", TestClientHangUpCancels},
	} {
		t.Run(other+"/"+c.name, c.fn)
	}
}

func TestUnknownEngineRefused(t *testing.T) {
	if _, err := server.New(server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", HTTPEngine: "turbo"}); err == nil {
		t.Fatal("New accepted http engine \"turbo\"")
	}
}

func TestUnknownGRPCTransportRefused(t *testing.T) {
	if _, err := server.New(server.Config{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", GRPCTransport: "quic"}); err == nil {
		t.Fatal("New accepted grpc transport \"quic\"")
	}
}

// TestFastEngineClients sends what clients send to a fast-engine server:
// Go's client with chunked uploads and Expect: 100-continue on keep-alive
// connections, and an HTTP/1.0 request (served by the net/http fallback).
func TestFastEngineClients(t *testing.T) {
	s := startServer(t, false, server.Config{HTTPEngine: server.EngineFast})
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i, c := range []struct{ path, body, want string }{
		{"/v1/models/sum3:predict", `{"instances":[[1,2,3],[4,5,6]]}`, `{"predictions":[6,15]}`},
		{"/v2/models/sum3/infer", `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, `"data":[6]`},
	} {
		for _, expect := range []bool{false, true} {
			// A reader of unknown length makes the client send chunks.
			req, err := http.NewRequestWithContext(t.Context(), "POST", s.http+c.path, io.MultiReader(strings.NewReader(c.body)))
			if err != nil {
				t.Fatal(err)
			}
			if expect {
				req.Header.Set("Expect", "100-continue")
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !strings.Contains(string(b), c.want) {
				t.Errorf("%d %s (expect %v): %d %s %v", i, c.path, expect, resp.StatusCode, b, err)
			}
		}
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(s.http, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /v2/health/live HTTP/1.0\r\n\r\n")
	b, err := io.ReadAll(conn)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.0 200 ") {
		t.Errorf("HTTP/1.0 answer %q, %v", b, err)
	}
}

// TestClientHangUpCancels: a client that hangs up while its request runs
// cancels it (the model call stops; the request counts as 499), not
// after the model's 10 s.
func TestClientHangUpCancels(t *testing.T) {
	s := startServer(t, false, server.Config{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.http, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"parameters":{"sleep_ms":10000},"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}]}`
	fmt.Fprintf(conn, "POST /v2/models/sum2/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _, m := do(t, "GET", s.http+"/metrics", nil, nil)
		if strings.Contains(string(m), "ferry_inflight_requests 2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("request never became in-flight")
		}
		time.Sleep(5 * time.Millisecond) // bounded poll
	}
	conn.Close()
	for {
		_, _, m := do(t, "GET", s.http+"/metrics", nil, nil)
		if strings.Contains(string(m), `ferry_requests_total{code="499",model="sum2",protocol="v2-rest"} 1`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cancelled request counted 5 s after the client left:\n%s", m)
		}
		time.Sleep(5 * time.Millisecond) // bounded poll
	}
}
