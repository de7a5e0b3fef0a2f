package graphrouter_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ferryserve/ferry/internal/graphrouter"
)

// BenchmarkRouter measures what the router adds on loopback: one request
// through a two-step Sequence (two service calls) against the same two
// calls made directly. The predictor echoes {"predictions":[1]}.
func BenchmarkRouter(b *testing.B) {
	pred := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"predictions":[1]}`)
	}))
	defer pred.Close()
	body := []byte(`{"instances":[[6.8,2.8,4.8,1.4]]}`)
	hc := &http.Client{}
	post := func(b *testing.B, url string) {
		resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.Run("direct-2-calls", func(b *testing.B) {
		for b.Loop() {
			post(b, pred.URL+"/v1/models/a:predict")
			post(b, pred.URL+"/v1/models/b:predict")
		}
	})
	b.Run("router-sequence-2-steps", func(b *testing.B) {
		ig, err := graphrouter.ParseGraph([]byte(`{"nodes":{"root":{"routerType":"Sequence","steps":[
{"serviceName":"a"},{"serviceName":"b","data":"$response","mapPredictionsToInstances":true}]}}}`), "bench", "default")
		if err != nil {
			b.Fatal(err)
		}
		srv, err := graphrouter.New(graphrouter.Config{Graph: ig, ServiceURLs: map[string]string{
			"a": pred.URL + "/v1/models/a:predict", "b": pred.URL + "/v1/models/b:predict"}})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, ln) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		}()
		url := "http://" + ln.Addr().String() + "/"
		b.ResetTimer()
		for b.Loop() {
			post(b, url)
		}
	})
}
