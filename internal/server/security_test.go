package server_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/server"
)

func TestRepositoryAPIPolicy(t *testing.T) {
	cases := []struct {
		name     string
		policy   server.RepositoryAPI
		auth     string
		wantHTTP int
		wantGRPC codes.Code
	}{
		{"open", server.RepositoryAPI{}, "", 200, codes.OK},
		{"disabled", server.RepositoryAPI{Disabled: true}, "", 403, codes.PermissionDenied},
		{"disabled even with a token", server.RepositoryAPI{Disabled: true, Token: "s3cret"}, "Bearer s3cret", 403, codes.PermissionDenied},
		{"token missing", server.RepositoryAPI{Token: "s3cret"}, "", 401, codes.Unauthenticated},
		{"token wrong", server.RepositoryAPI{Token: "s3cret"}, "Bearer nope", 401, codes.Unauthenticated},
		{"token right", server.RepositoryAPI{Token: "s3cret"}, "Bearer s3cret", 200, codes.OK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startServer(t, false, server.Config{RepositoryAPI: c.policy})
			hdr := map[string]string{}
			if c.auth != "" {
				hdr["Authorization"] = c.auth
			}
			code, _, body := do(t, "POST", s.http+"/v2/repository/models/sum2/unload", nil, hdr)
			if code != c.wantHTTP {
				t.Fatalf("REST unload: %d %s", code, body)
			}
			if code != 200 && !strings.Contains(string(body), "repository API") {
				t.Errorf("refusal does not say why: %s", body)
			}
			// Inference stays open whatever the policy.
			if code, _, body := do(t, "POST", s.http+"/v2/models/sum3/infer", []byte(`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP64","data":[1,2,3]}]}`), nil); code != 200 {
				t.Fatalf("infer: %d %s", code, body)
			}
			ctx := t.Context()
			if c.auth != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", c.auth)
			}
			_, err := pb.NewGRPCInferenceServiceClient(s.grpc).RepositoryIndex(ctx, &pb.RepositoryIndexRequest{})
			if status.Code(err) != c.wantGRPC {
				t.Fatalf("gRPC index: %v, want %v", err, c.wantGRPC)
			}
		})
	}
}

// TestUnloadedOnlyModelIsNotReady: a server whose only model was unloaded
// serves nothing, so readiness turns false (the supervisor heals it).
func TestUnloadedOnlyModelIsNotReady(t *testing.T) {
	s := startServer(t, false, server.Config{})
	if code, _, _ := do(t, "POST", s.http+"/v2/repository/models/sum2/unload", nil, nil); code != 200 {
		t.Fatal(code)
	}
	if code, _, _ := do(t, "GET", s.http+"/v2/health/ready", nil, nil); code != 200 {
		t.Fatalf("ready with sum3 still loaded: %d", code)
	}
	if code, _, _ := do(t, "POST", s.http+"/v2/repository/models/sum3/unload", nil, nil); code != 200 {
		t.Fatal(code)
	}
	// Both unloaded, but neither is the only model: a multi-model server
	// stays ready with models unloaded. Forget sum2: now sum3 is the only one.
	if code, _, _ := do(t, "GET", s.http+"/v2/health/ready", nil, nil); code != 200 {
		t.Fatalf("multi-model server not ready with models unloaded: %d", code)
	}
	if err := s.repo.Remove(t.Context(), "sum2"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := do(t, "GET", s.http+"/v2/health/ready", nil, nil); code != 503 {
		t.Fatalf("ready with the only model unloaded: %d", code)
	}
}

// TestSlowBodyIsCut replays a slow-loris client: headers promise a body,
// then one byte trickles in at a time. The server must give up on it
// within the grace period plus what the minimum rate allows.
func TestSlowBodyIsCut(t *testing.T) {
	s := startServer(t, false, server.Config{BodyRate: server.BodyRate{Grace: 300 * time.Millisecond, MinRate: 1024}})
	addr := strings.TrimPrefix(s.http, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v2/models/sum2/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
	start := time.Now()
	done := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		done <- line
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case line := <-done:
			if time.Since(start) > 5*time.Second {
				t.Fatalf("slow body held for %v", time.Since(start))
			}
			if line != "" && !strings.HasPrefix(line, "HTTP/1.1 4") {
				t.Fatalf("unexpected answer %q", line)
			}
			return
		case <-tick.C:
			if time.Since(start) > 10*time.Second {
				t.Fatal("server still reading a 1-byte-per-100ms body after 10s")
			}
			_, _ = conn.Write([]byte(" "))
		}
	}
}

// TestFastBodyIsKept: a large body sent at a normal pace is not cut by the
// bound, and the connection serves the next request.
func TestFastBodyIsKept(t *testing.T) {
	s := startServer(t, false, server.Config{BodyRate: server.BodyRate{Grace: 200 * time.Millisecond, MinRate: 1 << 20}})
	body := `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[1,2]}],"parameters":{"pad":"` + strings.Repeat("a", 4<<20) + `"}}`
	for i := 0; i < 2; i++ {
		resp, err := http.Post(s.http+"/v2/models/sum2/infer", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
}
