package http1

import (
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
)

// maxTrailerBytes bounds the trailer section of a chunked body.
const maxTrailerBytes = 16 << 10

var errTrailerTooLarge = errors.New("chunked body trailer too large")

// body reads one request's body straight from the connection's read
// buffer: Content-Length bytes, or chunked encoding up to and including
// its trailer. It sends 100 Continue on the first read when the client
// asked for it. The mutex makes a read from a goroutine the handler left
// behind safe against the connection's next request: once the handler has
// returned, reads fail.
type body struct {
	mu           sync.Mutex
	c            *conn
	remaining    int64
	chunked      bool
	cr           io.Reader
	eof          bool
	closed       bool
	needContinue bool
	err          error
}

func (b *body) reset(h *head) {
	b.mu.Lock()
	b.remaining = max(h.contentLength, 0)
	b.chunked = h.chunked
	b.cr = nil
	b.eof = !h.chunked && b.remaining == 0
	b.closed = false
	b.needContinue = h.expectContinue && !b.eof
	b.err = nil
	b.mu.Unlock()
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.needContinue && b.c.resp.headSent {
		// The final answer has started: 100 Continue can no longer
		// precede it (the client sends the body after its own wait).
		b.needContinue = false
	}
	if b.needContinue {
		b.needContinue = false
		if _, err := b.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			b.err = err
			return 0, err
		}
		if err := b.c.bw.Flush(); err != nil {
			b.err = err
			return 0, err
		}
	}
	if b.c.br.Buffered() == 0 && b.c.bw.Buffered() > 0 {
		// About to wait on the client: send what it may be waiting for
		// (answers to its earlier pipelined requests) first.
		if err := b.c.bw.Flush(); err != nil {
			b.err = err
			return 0, err
		}
	}
	if b.chunked {
		return b.readChunked(p)
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.c.br.Read(p)
	b.remaining -= int64(n)
	if b.remaining == 0 {
		b.eof = true
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *body) readChunked(p []byte) (int, error) {
	if b.cr == nil {
		// The chunked reader reads through our *bufio.Reader itself, so it
		// never reads past the body.
		b.cr = httputil.NewChunkedReader(b.c.br)
	}
	n, err := b.cr.Read(p)
	if err == io.EOF {
		if err = b.readTrailer(); err == nil {
			b.eof = true
			return n, io.EOF
		}
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
	}
	return n, err
}

// readTrailer consumes the trailer fields after the last chunk, up to the
// empty line; Ferry's handlers read no trailers, so they are dropped.
func (b *body) readTrailer() error {
	total := 0
	for {
		line, err := b.c.br.ReadSlice('\n')
		total += len(line)
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if total > maxTrailerBytes {
			return errTrailerTooLarge
		}
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return nil
		}
	}
}

// done reports whether the handler can read no more of the body from
// the connection.
func (b *body) done() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof || b.err != nil || b.closed
}

// Close is a no-op for the handler: the connection finishes the body.
func (b *body) Close() error { return nil }

// close ends the handler's access to the body.
func (b *body) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
}

// drain reads the rest of the body when that is cheap enough to keep the
// connection; false means the connection must close after the answer.
func (b *body) drain() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.eof {
		return true
	}
	if b.err != nil || b.needContinue {
		// The client still waits for 100 Continue: it may never send the
		// body, so the connection cannot be reused.
		return false
	}
	if b.c.dr.want.Load() == 0 {
		// No bound from the handler: the rest must come as fast as a
		// head would, or the connection closes.
		b.c.dr.set(time.Now().Add(b.c.srv.ReadHeaderTimeout))
	}
	if !b.chunked {
		if b.remaining > maxDrain {
			return false
		}
		n, err := b.c.br.Discard(int(b.remaining))
		b.remaining -= int64(n)
		b.eof = err == nil
		return b.eof
	}
	var scratch [4096]byte
	if b.cr == nil {
		b.cr = httputil.NewChunkedReader(b.c.br)
	}
	for read := 0; read <= maxDrain; {
		n, err := b.cr.Read(scratch[:])
		read += n
		if err == io.EOF {
			b.eof = b.readTrailer() == nil
			return b.eof
		}
		if err != nil {
			return false
		}
	}
	return false
}
