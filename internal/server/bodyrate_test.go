package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBodyRateAllocs: the guard costs one allocation per request with a
// body (its reader; the response controller is held by value).
func TestBodyRateAllocs(t *testing.T) {
	h := BodyRate{}.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	req := httptest.NewRequest("POST", "/", nil)
	rd := strings.NewReader(`{"instances":[[1,2,3,4]]}`)
	body := io.NopCloser(rd)
	w := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
	allocs := testing.AllocsPerRun(200, func() {
		rd.Seek(0, io.SeekStart)
		req.Body = body
		h.ServeHTTP(w, req)
	})
	if allocs > 1 {
		t.Errorf("%.1f allocations per request, want at most 1", allocs)
	}
}

// deadlineWriter is a ResponseWriter whose connection takes deadlines, as
// the server's does.
type deadlineWriter struct{ *httptest.ResponseRecorder }

func (deadlineWriter) SetReadDeadline(time.Time) error { return nil }
