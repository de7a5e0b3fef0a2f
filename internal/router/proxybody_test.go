package router

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStreamedBodyOutlivesResponseStart: a request body too large to
// buffer is streamed to the replica by the transport's write goroutine,
// which reads the inbound body once more after its last byte (to check
// that nothing follows the Content-Length). When the replica answers
// before that read (a fast replica on loopback, the write goroutine
// descheduled on a busy machine), the answer's first write must not let
// the server consume and close the inbound body under that goroutine: its
// read would fail, the transport would close the replica connection, and
// the client would get a truncated answer (unexpected EOF). The body
// wrapper here holds that read until the client has the answer's headers,
// which makes the interleaving certain instead of rare.
func TestStreamedBodyOutlivesResponseStart(t *testing.T) {
	const head, tail = 16 << 10, 48 << 10
	answer := bytes.Repeat([]byte("a"), head+tail)
	headersSeen := make(chan struct{}) // the client has the answer's headers
	probed := make(chan struct{})      // the read after the body's end returned
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if n != r.ContentLength {
			t.Errorf("replica got %d bytes of a %d-byte body", n, r.ContentLength)
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		_, _ = w.Write(answer[:head])
		http.NewResponseController(w).Flush()
		select {
		case <-probed:
		case <-time.After(5 * time.Second):
			t.Error("the transport never read past the body's end")
			return
		}
		// A broken proxy connection shows here as a cancelled request;
		// give it the time to, so the test does not race it.
		select {
		case <-r.Context().Done():
		case <-time.After(100 * time.Millisecond):
		}
		_, _ = w.Write(answer[head:])
	}))
	defer be.Close()
	r := New("example.com", nil)
	err := r.Update(&Table{Domain: "example.com", Services: []*Service{{Name: "digits", Namespace: "default", Components: map[string]*Component{
		Predictor: {Targets: []Target{{Revision: "digits-predictor-1", Percent: 100, Latest: true, Backends: []string{strings.TrimPrefix(be.URL, "http://")}}}},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	in := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		req.Body = &holdAfterEOF{ReadCloser: req.Body, hold: headersSeen, probed: probed}
		r.ServeHTTP(w, req)
	}))
	defer in.Close()

	body := bytes.Repeat([]byte("1,"), (maxBufferedBody+10<<10)/2) // streamed, not buffered
	resp, err := in.Client().Post(in.URL+"/v2/models/digits/infer", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	close(headersSeen)
	got, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || len(got) != len(answer) {
		t.Fatalf("status %d, %d of %d bytes of the answer, err %v", resp.StatusCode, len(got), len(answer), err)
	}
}

// holdAfterEOF is an inbound body whose reads after its end wait for hold,
// as a descheduled transport write goroutine would.
type holdAfterEOF struct {
	io.ReadCloser
	hold   <-chan struct{}
	probed chan struct{}
	once   sync.Once
	eof    bool
}

func (b *holdAfterEOF) Read(p []byte) (int, error) {
	if !b.eof {
		n, err := b.ReadCloser.Read(p)
		b.eof = err == io.EOF
		return n, err
	}
	select {
	case <-b.hold:
	case <-time.After(5 * time.Second):
	}
	n, err := b.ReadCloser.Read(p)
	b.once.Do(func() { close(b.probed) })
	return n, err
}
