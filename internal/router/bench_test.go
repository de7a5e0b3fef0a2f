package router

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ferryserve/ferry/internal/cputime"
	"github.com/ferryserve/ferry/internal/server/http1"
)

// The ingress hop's cost, in process: a client sends V1 batch-1 predicts
// over keep-alive connections either through the real Router (served, as
// ferry up serves it, by the http1 engine, one-service table) to a
// backend (served by http1, as ferry serve is), or to the backend alone. The difference between the two is what the hop costs;
// both include the client's and the backend's own work. cpu-ns/op, the
// process's CPU time per request, is steadier than ns/op where other
// programs share the cores.

const benchBody = `{"instances": [[6.8, 2.8, 4.8, 1.4]]}`

func benchBackend(b *testing.B) string {
	b.Helper()
	return benchServe(b, benchReplica, "tcp", "127.0.0.1:0")
}

var benchReplica = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"predictions": [1]}`))
})

// benchServe serves h with the http1 engine on a listener of network at
// addr; it returns the address.
func benchServe(b *testing.B, h http.Handler, network, addr string) string {
	b.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		b.Fatal(err)
	}
	s := &http1.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// benchLoad runs b.N predicts against url with Host host, in parallel.
func benchLoad(b *testing.B, url, host string) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}}
	b.Cleanup(client.CloseIdleConnections)
	body := []byte(benchBody)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Process()
	defer func() { b.ReportMetric(float64(cputime.Process()-cpu0)/float64(b.N), "cpu-ns/op") }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest("POST", url, bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			req.Host = host
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkIngressProxy(b *testing.B) { benchIngress(b, nil) }

// BenchmarkIngressProxySocket is BenchmarkIngressProxy with the backend
// also on a Unix socket, which the hop dials (as ferry up's replicas).
func BenchmarkIngressProxySocket(b *testing.B) {
	sock := benchServe(b, benchReplica, "unix", b.TempDir()+"/http.sock")
	benchIngress(b, func(string) string { return sock })
}

// benchIngress loads a Router with one service whose one replica is a
// loopback backend (also at the Unix socket socket names, if set).
func benchIngress(b *testing.B, socket func(addr string) string) {
	be := benchBackend(b)
	r := New("example.com", nil)
	if socket != nil {
		r.SetHopSocket(socket)
	}
	err := r.Update(&Table{Domain: "example.com", Services: []*Service{
		{Name: "iris", Namespace: "default", Components: map[string]*Component{
			Predictor: {Targets: []Target{{Revision: "iris-predictor-1", Percent: 100, Latest: true, Backends: []string{be}}}},
		}},
	}})
	if err != nil {
		b.Fatal(err)
	}
	in := benchServe(b, r, "tcp", "127.0.0.1:0")
	benchLoad(b, "http://"+in+"/v1/models/iris:predict", "iris.default.example.com")
}

// BenchmarkBackendAlone is the reference: the same requests straight to
// the backend.
func BenchmarkBackendAlone(b *testing.B) {
	be := benchBackend(b)
	benchLoad(b, "http://"+be+"/v1/models/iris:predict", "iris.default.example.com")
}
