package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/cputime"
	"github.com/ferryserve/ferry/internal/server"
)

// BenchmarkREST measures one batch-1 request over a keep-alive loopback
// connection, per engine, with a client that allocates nothing, so that
// -benchmem shows the server's allocations per request. cpu-ns/op is the
// process's CPU time (client included) per request, which other programs
// on the machine disturb less than ns/op.
//
//	go test -run '^$' -bench BenchmarkREST -benchmem -cpu 1 ./internal/server/
func BenchmarkREST(b *testing.B) {
	for _, engine := range []string{server.EngineStd, server.EngineFast} {
		for _, c := range []struct{ name, path, body string }{
			{"v1", "/v1/models/sum3:predict", `{"instances":[[1,2,3]]}`},
			{"v2", "/v2/models/sum3/infer", `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`},
		} {
			b.Run(engine+"/"+c.name, func(b *testing.B) {
				s := startServer(b, false, server.Config{HTTPEngine: engine})
				conn, err := net.Dial("tcp", strings.TrimPrefix(s.http, "http://"))
				if err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				req := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", c.path, len(c.body), c.body)
				br := bufio.NewReaderSize(conn, 16<<10)
				b.ReportAllocs()
				b.ResetTimer()
				start := int64(cputime.Process())
				for range b.N {
					if _, err := conn.Write(req); err != nil {
						b.Fatal(err)
					}
					if err := readResponse(br); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(int64(cputime.Process())-start)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

// BenchmarkRESTModel is BenchmarkREST's loop over ferry serve's default
// engine with bench/model (100 XGBoost trees) and the batch-1 bodies of
// bench/payloads, so that the request path is weighed against a real
// model's evaluation (docs/benchmarks.md, "Request bodies read straight
// from their bytes").
//
//	go test -run '^$' -bench BenchmarkRESTModel -cpu 1 ./internal/server/
func BenchmarkRESTModel(b *testing.B) {
	for _, c := range []struct{ name, path string }{
		{"v1", "/v1/models/bench:predict"},
		{"v2", "/v2/models/bench/infer"},
	} {
		b.Run(c.name, func(b *testing.B) {
			body, err := os.ReadFile("../../bench/payloads/" + c.name + "-b1.json")
			if err != nil {
				b.Fatal(err)
			}
			srv := startBenchServer(b, "bench")
			conn, err := net.Dial("tcp", srv.HTTPAddr())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			req := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", c.path, len(body), body)
			br := bufio.NewReaderSize(conn, 16<<10)
			b.ReportAllocs()
			b.ResetTimer()
			start := int64(cputime.Process())
			for range b.N {
				if _, err := conn.Write(req); err != nil {
					b.Fatal(err)
				}
				if err := readResponse(br); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(int64(cputime.Process())-start)/float64(b.N), "cpu-ns/op")
		})
	}
}

// readResponse reads one 200 answer with a Content-Length.
func readResponse(br *bufio.Reader) error {
	n := -1
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				return fmt.Errorf("status line %q", line)
			}
			first = false
			continue
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte("Content-Length")) {
			n = 0
			for _, c := range bytes.TrimSpace(v) {
				n = n*10 + int(c-'0')
			}
		}
	}
	if n < 0 {
		return fmt.Errorf("no Content-Length")
	}
	_, err := br.Discard(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
