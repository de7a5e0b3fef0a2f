package reqlog

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type nopSink struct{}

func (nopSink) Send(context.Context, *Event) error { return nil }

// BenchmarkMiddleware is the cost per request of logging it: without a
// logger, with events kept in memory only, and written to the spool
// before the response (fsync never, the default, and always). 16
// concurrent requests, so the spool's group commit shows.
//
//	go test -run '^$' -bench Middleware -benchmem ./internal/reqlog/
func BenchmarkMiddleware(b *testing.B) {
	body := `{"inputs":[{"name":"x","shape":[2,4],"datatype":"FP32","data":[6.8,2.8,4.8,1.4,6.0,3.4,4.5,1.6]}]}`
	for _, tc := range []struct {
		name  string
		log   bool
		spool bool
		fsync FsyncPolicy
	}{
		{"none", false, false, ""},
		{"memory", true, false, ""},
		{"spool", true, true, FsyncNever},
		{"spool-fsync-always", true, true, FsyncAlways},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var h http.Handler = model
			if tc.log {
				cfg := Config{Sink: nopSink{}, QueueSize: 1 << 16}
				if tc.spool {
					cfg.SpoolDir, cfg.Fsync, cfg.SpoolMaxSize = b.TempDir(), tc.fsync, -1
				}
				l, err := New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- l.Run(ctx) }()
				defer func() {
					cancel()
					if err := <-done; err != nil {
						b.Error(err)
					}
				}()
				h = l.Middleware(model)
			}
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, httptest.NewRequest("POST", "/v2/models/m/infer", strings.NewReader(body)))
					if rec.Code != 200 {
						b.Errorf("status %d", rec.Code)
					}
				}
			})
		})
	}
}
