package http1

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// response is the http.ResponseWriter of one request. It holds the body
// (up to maxBuffered) so that it can send it with a Content-Length in one
// write; a handler that flushes, or writes more, streams it with chunked
// encoding (or the Content-Length the handler set).
type response struct {
	c           *conn
	req         *http.Request
	hdr         http.Header
	status      int
	wroteHeader bool
	headSent    bool
	chunking    bool
	isHead      bool
	closeAfter  bool
	buf         []byte
	// declared is the Content-Length a streamed answer was sent with (-1:
	// none) and sent what it has sent of its body, so that a handler
	// cannot send more or fewer bytes than the head says.
	declared, sent int64
}

var (
	_ http.ResponseWriter = (*response)(nil)
	_ http.Flusher        = (*response)(nil)
)

func (w *response) reset(req *http.Request) {
	clear(w.hdr)
	w.req = req
	w.status = 0
	w.wroteHeader, w.headSent, w.chunking = false, false, false
	w.declared, w.sent = -1, 0
	w.isHead = req.Method == http.MethodHead
	w.closeAfter = req.Close
	if cap(w.buf) > maxBuffered*2 {
		w.buf = nil
	}
	w.buf = w.buf[:0]
}

func (w *response) Header() http.Header { return w.hdr }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// Informational answers (103 Early Hints) go out at once.
		w.writeStatusLine(code)
		w.writeFields(false)
		w.c.bw.WriteString("\r\n")
		_ = w.c.bw.Flush()
		return
	}
	w.wroteHeader = true
	w.status = code
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.headSent {
		return w.writeStream(p)
	}
	w.buf = append(w.buf, p...)
	if len(w.buf) > maxBuffered {
		if err := w.startStream(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *response) WriteString(s string) (int, error) {
	if !w.headSent && w.wroteHeader && bodyAllowed(w.status) && len(w.buf)+len(s) <= maxBuffered {
		w.buf = append(w.buf, s...)
		return len(s), nil
	}
	return w.Write([]byte(s))
}

func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		if w.startStream() != nil {
			return
		}
	}
	_ = w.c.bw.Flush()
}

// FlushError is Flush reporting the write error (http.ResponseController
// prefers it).
func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.headSent {
		if err := w.startStream(); err != nil {
			return err
		}
	}
	return w.c.bw.Flush()
}

// SetReadDeadline bounds the handler's body reads (the body-rate bound
// sets it); it takes effect at the next read that reaches the socket.
func (w *response) SetReadDeadline(t time.Time) error {
	w.c.dr.set(t)
	return nil
}

// SetWriteDeadline bounds the writes of the answer.
func (w *response) SetWriteDeadline(t time.Time) error {
	return w.c.rwc.SetWriteDeadline(t)
}

func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// startStream sends the head without a Content-Length (unless the handler
// set one) and what is buffered so far.
func (w *response) startStream() error {
	w.closeAfter = w.closeAfter || w.c.srv.closing.Load()
	if cl := w.hdr.Get("Content-Length"); cl != "" {
		if n, ok := parseLength([]byte(cl)); ok && bodyAllowed(w.status) {
			w.declared = n
		} else {
			w.hdr.Del("Content-Length") // not a length we can keep to
		}
	}
	w.chunking = w.declared < 0 && !w.isHead && bodyAllowed(w.status)
	w.writeStatusLine(w.status)
	w.writeFields(true)
	if w.chunking {
		w.c.bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	w.writeCloseAndEnd()
	w.headSent = true
	buf := w.buf
	w.buf = w.buf[:0]
	_, err := w.writeStream(buf)
	return err
}

func (w *response) writeStream(p []byte) (int, error) {
	if w.isHead || len(p) == 0 {
		return len(p), nil
	}
	if w.declared >= 0 && w.sent+int64(len(p)) > w.declared {
		return 0, http.ErrContentLength
	}
	w.sent += int64(len(p))
	bw := w.c.bw
	if w.chunking {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunking && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	return n, err
}

// finish completes the answer after the handler returned: the buffered
// body with its Content-Length, or the end of a stream.
func (w *response) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.hdr.Get("Connection") == "close" {
		w.closeAfter = true
	}
	if !w.c.body.drain() {
		w.closeAfter = true
	}
	bw := w.c.bw
	if w.headSent {
		if w.chunking {
			bw.WriteString("0\r\n\r\n")
		}
		if !w.isHead && w.declared > w.sent {
			w.closeAfter = true // short of its Content-Length: only a close ends it
		}
		return nil
	}
	w.closeAfter = w.closeAfter || w.c.srv.closing.Load()
	w.writeStatusLine(w.status)
	w.writeFields(false)
	if bodyAllowed(w.status) {
		n := int64(len(w.buf))
		if w.isHead && n == 0 {
			if cl, err := strconv.ParseInt(w.hdr.Get("Content-Length"), 10, 64); err == nil {
				n = cl
			}
		}
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), n, 10))
		bw.WriteString("\r\n")
	}
	w.writeCloseAndEnd()
	if !w.isHead && len(w.buf) > 0 {
		_, err := bw.Write(w.buf)
		return err
	}
	return nil
}

// statusLines are the heads' first lines for the codes Ferry answers most.
var statusLines = func() map[int]string {
	m := map[int]string{}
	for _, code := range []int{200, 400, 401, 403, 404, 405, 413, 429, 499, 500, 501, 503, 504} {
		m[code] = statusLine(code)
	}
	return m
}()

func statusLine(code int) string {
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
}

func (w *response) writeStatusLine(code int) {
	if l, ok := statusLines[code]; ok {
		w.c.bw.WriteString(l)
		return
	}
	w.c.bw.WriteString(statusLine(code))
}

// writeFields writes the handler's header fields, a Date and, when
// missing, a sniffed Content-Type. Content-Length and Transfer-Encoding
// are the server's to write, except a Content-Length a streaming handler
// declared.
func (w *response) writeFields(streaming bool) {
	bw := w.c.bw
	hasType, hasDate := false, false
	for k, vs := range w.hdr {
		switch k {
		case "Content-Length":
			if !streaming {
				continue
			}
		case "Transfer-Encoding":
			continue
		case "Content-Type":
			hasType = true
		case "Date":
			hasDate = true
		}
		if !validFieldName(k) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeFieldValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	if !hasDate {
		bw.WriteString("Date: ")
		bw.Write(w.c.dateHeader())
		bw.WriteString("\r\n")
	}
	if !hasType && len(w.buf) > 0 && bodyAllowed(w.status) {
		bw.WriteString("Content-Type: ")
		bw.WriteString(http.DetectContentType(w.buf))
		bw.WriteString("\r\n")
	}
}

func (w *response) writeCloseAndEnd() {
	if w.closeAfter && w.hdr.Get("Connection") == "" {
		w.c.bw.WriteString("Connection: close\r\n")
	}
	w.c.bw.WriteString("\r\n")
}

func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := range len(k) {
		if !isToken(k[i]) {
			return false
		}
	}
	return true
}

// writeFieldValue writes v with CR and LF replaced by spaces, so that a
// value cannot end the field (net/http does the same).
func writeFieldValue(bw *bufio.Writer, v string) {
	clean := true
	for i := range len(v) {
		if v[i] == '\r' || v[i] == '\n' {
			clean = false
			break
		}
	}
	if clean {
		bw.WriteString(v)
		return
	}
	for i := range len(v) {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		bw.WriteByte(c)
	}
}
