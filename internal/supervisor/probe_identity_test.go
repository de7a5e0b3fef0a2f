package supervisor

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestProbeChecksIdentity: a probe that expects a replica's identity fails
// when another process answers on the port, and passes for its own.
func TestProbeChecksIdentity(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Ferry-Replica-Id", "other")
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	p := func(value string) *Probe {
		return &Probe{HTTPGet: &HTTPGetAction{Path: "/v2/health/ready", Port: n, Header: "Ferry-Replica-Id", Value: value}, Timeout: 1e9}
	}
	if err := p("mine").check(context.Background(), http.DefaultClient, nil); err == nil || !strings.Contains(err.Error(), "answers for another process") {
		t.Errorf("another process's answer: %v", err)
	}
	if err := p("other").check(context.Background(), http.DefaultClient, nil); err != nil {
		t.Errorf("its own answer: %v", err)
	}
	noID := p("")
	noID.HTTPGet.Header = ""
	if err := noID.check(context.Background(), http.DefaultClient, nil); err != nil {
		t.Errorf("a probe without identity: %v", err)
	}
}
