package h2grpc

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

const (
	// handshakeTimeout bounds the client preface and first SETTINGS.
	handshakeTimeout = 20 * time.Second
	// maxContinuations bounds the CONTINUATION frames of one header block
	// (a client that splits at 16 KiB frames needs 4 for the default
	// 64 KiB list).
	maxContinuations = 64
	// maxPending bounds the bytes waiting to be written; a writer that
	// finds more waits for the flush.
	maxPending = 1 << 20
	// maxPingStrikes and noCallPingTime are grpc-go's keepalive
	// enforcement: a third ping too soon closes the connection, and with
	// no calls a client may ping every two hours.
	maxPingStrikes = 2
	noCallPingTime = 2 * time.Hour
	// drainLinger is how long a drained connection waits for the client to
	// close after its write side is shut.
	drainLinger = time.Second
	// pingAckDelay bounds how long a PING acknowledgement waits for
	// other frames to go out with.
	pingAckDelay = 5 * time.Millisecond
)

// conn is one client connection. Its reader goroutine (serve) owns the
// frame reader, the HPACK decoder and the fields commented "reader";
// everything else is under mu.
type conn struct {
	s       *Server
	nc      net.Conn
	fr      *frameReader
	dec     *hpack.Decoder
	baseCtx context.Context

	// reader
	hs           headerState
	hdrOpen      bool // a header block awaits CONTINUATION frames
	hdrStream    uint32
	hdrEnd       bool // the block's HEADERS had END_STREAM
	hdrFrames    int
	recvConnWin  int64 // what the client may still send on the connection
	connUnacked  uint32
	pingStrikes  int
	lastPingAt   time.Time
	resets       int
	resetsSince  time.Time
	sawSettings  bool
	peerGoingOff bool

	mu          sync.Mutex
	cond        sync.Cond
	waiters     int
	streams     map[uint32]*stream
	maxStreamID uint32
	draining    bool
	goAwayID    uint32
	closed      bool
	resetPings  bool // a HEADERS or DATA frame was written since the last ping
	running     int  // unary calls dispatched and not yet answered
	ackTimer    *time.Timer
	ackArmed    bool

	// writer, under mu
	wbuf, wspare []byte
	flushing     bool
	werr         error
	enc          *hpack.Encoder
	hbuf         []byte
	sendConnWin  int64
	peerInitWin  int64
	peerMaxFrame int
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		s:            s,
		nc:           nc,
		fr:           newFrameReader(nc, defaultMaxFrameSize),
		streams:      make(map[uint32]*stream),
		recvConnWin:  int64(s.cfg.ConnWindowSize),
		sendConnWin:  defaultInitialWindow,
		peerInitWin:  defaultInitialWindow,
		peerMaxFrame: defaultMaxFrameSize,
		wbuf:         make([]byte, 0, 16<<10),
		wspare:       make([]byte, 0, 16<<10),
	}
	c.cond.L = &c.mu
	c.enc = hpack.NewEncoder(hbufWriter{c})
	c.dec = hpack.NewDecoder(defaultHeaderTableLen, c.onField)
	c.dec.SetMaxStringLength(int(s.cfg.MaxHeaderListSize))
	c.baseCtx = peer.NewContext(context.Background(), &peer.Peer{Addr: nc.RemoteAddr(), LocalAddr: nc.LocalAddr()})
	return c
}

// hbufWriter collects the HPACK encoder's output in conn.hbuf (under mu).
type hbufWriter struct{ c *conn }

func (w hbufWriter) Write(p []byte) (int, error) {
	w.c.hbuf = append(w.c.hbuf, p...)
	return len(p), nil
}

// serve runs the connection until it fails or is closed.
func (c *conn) serve() {
	err := c.readLoop()
	var ce connError
	if errors.As(err, &ce) {
		c.mu.Lock()
		c.wbuf = appendGoAway(c.wbuf, c.maxStreamID, ce.code, ce.debug)
		c.flushLocked()
		c.mu.Unlock()
		println("DBG connerr", err.Error())
		c.s.cfg.Logger.Debug("grpc connection error", "peer", c.nc.RemoteAddr().String(), "err", err)
	}
	c.close(err)
}

func (c *conn) readLoop() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(handshakeTimeout))
	if err := c.fr.readPreface(); err != nil {
		return err
	}
	cfg := &c.s.cfg
	c.mu.Lock()
	c.wbuf = appendFrameHeader(c.wbuf, 18, frameSettings, 0, 0)
	for _, kv := range [][2]uint32{
		{settingMaxConcurrentStreams, cfg.MaxConcurrentStreams},
		{settingInitialWindowSize, cfg.InitialWindowSize},
		{settingMaxHeaderListSize, cfg.MaxHeaderListSize},
	} {
		c.wbuf = append(c.wbuf, byte(kv[0]>>8), byte(kv[0]))
		c.wbuf = appendUint32(c.wbuf, kv[1])
	}
	if inc := cfg.ConnWindowSize - defaultInitialWindow; inc > 0 {
		c.wbuf = appendWindowUpdate(c.wbuf, 0, inc)
	}
	c.flushLocked()
	c.mu.Unlock()
	for {
		h, p, err := c.fr.next()
		if err != nil {
			return err
		}
		if !c.sawSettings {
			if h.typ != frameSettings || h.has(flagAck) {
				return connError{errProtocol, "first frame is not SETTINGS"}
			}
			c.sawSettings = true
			_ = c.nc.SetReadDeadline(time.Time{})
		}
		if c.hdrOpen && (h.typ != frameContinuation || h.stream != c.hdrStream) {
			return connError{errProtocol, "header block interrupted"}
		}
		if err := c.handle(h, p); err != nil {
			return err
		}
		c.backpressure()
	}
}

// backpressure stops reading while more than maxPending bytes wait to be
// written (a client that sends but does not read), so that the answers to
// its frames cannot grow without bound.
func (c *conn) backpressure() {
	c.mu.Lock()
	for len(c.wbuf) > maxPending && c.werr == nil {
		if !c.flushing {
			c.flushLocked()
			continue
		}
		c.waitLocked()
	}
	c.mu.Unlock()
}

func (c *conn) handle(h frameHeader, p []byte) error {
	switch h.typ {
	case frameData:
		return c.onData(h, p)
	case frameHeaders:
		return c.onHeaders(h, p)
	case frameContinuation:
		if !c.hdrOpen {
			return connError{errProtocol, "CONTINUATION without HEADERS"}
		}
		c.hdrFrames++
		if c.hdrFrames > maxContinuations {
			return connError{errEnhanceYourCalm, "too many CONTINUATION frames"}
		}
		return c.headerFragment(p, h.has(flagEndHeaders))
	case framePriority:
		if h.stream == 0 {
			return connError{errProtocol, "PRIORITY on stream 0"}
		}
		if h.length != 5 {
			c.resetStream(h.stream, errFrameSize)
		}
		return nil
	case frameRSTStream:
		return c.onRSTStream(h, p)
	case frameSettings:
		return c.onSettings(h, p)
	case framePushPromise:
		return connError{errProtocol, "PUSH_PROMISE from a client"}
	case framePing:
		return c.onPing(h, p)
	case frameGoAway:
		if h.stream != 0 {
			return connError{errProtocol, "GOAWAY on a stream"}
		}
		c.peerGoingOff = true
		return nil
	case frameWindowUpdate:
		return c.onWindowUpdate(h, p)
	}
	return nil // unknown frame types are ignored (RFC 9113 §4.1)
}

// --- flow control and control frames ---

func (c *conn) onSettings(h frameHeader, p []byte) error {
	if h.stream != 0 {
		return connError{errProtocol, "SETTINGS on a stream"}
	}
	if h.has(flagAck) {
		if len(p) != 0 {
			return connError{errFrameSize, "SETTINGS ACK with a payload"}
		}
		return nil
	}
	if len(p)%6 != 0 {
		return connError{errFrameSize, "SETTINGS length not a multiple of 6"}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ; len(p) > 0; p = p[6:] {
		id, v := binary.BigEndian.Uint16(p), binary.BigEndian.Uint32(p[2:])
		switch id {
		case settingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(min(v, defaultHeaderTableLen))
		case settingEnablePush:
			if v > 1 {
				return connError{errProtocol, "bad ENABLE_PUSH"}
			}
		case settingInitialWindowSize:
			if v > maxWindow {
				return connError{errFlowControl, "INITIAL_WINDOW_SIZE over 2^31-1"}
			}
			delta := int64(v) - c.peerInitWin
			c.peerInitWin = int64(v)
			for _, st := range c.streams {
				st.sendWin += delta
				if st.sendWin > maxWindow {
					return connError{errFlowControl, "stream window over 2^31-1"}
				}
			}
		case settingMaxFrameSize:
			if v < defaultMaxFrameSize || v > maxFrameSizeLimit {
				return connError{errProtocol, "bad MAX_FRAME_SIZE"}
			}
			c.peerMaxFrame = int(v)
		}
	}
	c.wbuf = appendFrameHeader(c.wbuf, 0, frameSettings, flagAck, 0)
	c.wake()
	c.flushLocked()
	return c.werr
}

func (c *conn) onPing(h frameHeader, p []byte) error {
	if h.stream != 0 {
		return connError{errProtocol, "PING on a stream"}
	}
	if len(p) != 8 {
		return connError{errFrameSize, "PING length not 8"}
	}
	if h.has(flagAck) {
		return nil
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.resetPings {
		c.resetPings = false
		c.pingStrikes = 0
	} else {
		minTime := c.s.cfg.KeepaliveMinTime
		if len(c.streams) == 0 {
			minTime = noCallPingTime
		}
		if !c.lastPingAt.IsZero() && now.Sub(c.lastPingAt) < minTime {
			c.pingStrikes++
		}
	}
	c.lastPingAt = now
	if c.pingStrikes > maxPingStrikes {
		return connError{errEnhanceYourCalm, "too_many_pings"}
	}
	c.wbuf = appendFrameHeader(c.wbuf, 8, framePing, flagAck, 0)
	c.wbuf = append(c.wbuf, p...)
	// The acknowledgement goes out with the next frames written, or after
	// pingAckDelay: grpc-go clients ping after every response they read
	// (bandwidth estimation), and a write of its own per ping cost about
	// a tenth of a batch-1 call.
	if !c.ackArmed {
		c.ackArmed = true
		if c.ackTimer == nil {
			c.ackTimer = time.AfterFunc(pingAckDelay, c.flushAcks)
		} else {
			c.ackTimer.Reset(pingAckDelay)
		}
	}
	return c.werr
}

// flushAcks writes deferred PING acknowledgements.
func (c *conn) flushAcks() {
	c.mu.Lock()
	c.ackArmed = false
	c.flushLocked()
	c.mu.Unlock()
}

func (c *conn) onWindowUpdate(h frameHeader, p []byte) error {
	if len(p) != 4 {
		return connError{errFrameSize, "WINDOW_UPDATE length not 4"}
	}
	inc := int64(binary.BigEndian.Uint32(p) & (1<<31 - 1))
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.stream == 0 {
		if inc == 0 {
			return connError{errProtocol, "WINDOW_UPDATE of 0"}
		}
		c.sendConnWin += inc
		if c.sendConnWin > maxWindow {
			return connError{errFlowControl, "connection window over 2^31-1"}
		}
		c.wake()
		return nil
	}
	st := c.streams[h.stream]
	if st == nil {
		if h.stream > c.maxStreamID {
			return connError{errProtocol, "WINDOW_UPDATE on an idle stream"}
		}
		return nil
	}
	if inc == 0 {
		c.resetStreamLocked(st, errProtocol)
		return nil
	}
	st.sendWin += inc
	if st.sendWin > maxWindow {
		c.resetStreamLocked(st, errFlowControl)
		return nil
	}
	c.wake()
	return nil
}

func (c *conn) onRSTStream(h frameHeader, p []byte) error {
	if h.stream == 0 {
		return connError{errProtocol, "RST_STREAM on stream 0"}
	}
	if len(p) != 4 {
		return connError{errFrameSize, "RST_STREAM length not 4"}
	}
	c.mu.Lock()
	if h.stream > c.maxStreamID {
		c.mu.Unlock()
		return connError{errProtocol, "RST_STREAM on an idle stream"}
	}
	st := c.streams[h.stream]
	if st != nil && !st.reset {
		st.reset = true
		if !st.dispatched {
			c.removeLocked(st)
		}
		c.wake()
	}
	c.mu.Unlock()
	if st == nil {
		return nil
	}
	st.cancel()
	return c.countReset()
}

// countReset bounds how fast a client may reset or have refused its
// streams (the HTTP/2 rapid-reset attack: streams opened and reset at once
// so that work starts without counting against MAX_CONCURRENT_STREAMS).
// Handlers still count until they return; this closes a connection that
// resets more than max(100, MaxConcurrentStreams) streams in a second.
func (c *conn) countReset() error {
	now := time.Now()
	if now.Sub(c.resetsSince) > time.Second {
		c.resetsSince, c.resets = now, 0
	}
	c.resets++
	if c.resets > max(100, int(c.s.cfg.MaxConcurrentStreams)) {
		return connError{errEnhanceYourCalm, "too many stream resets"}
	}
	return nil
}

// resetStream sends RST_STREAM and forgets the stream.
func (c *conn) resetStream(id, code uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.streams[id]; st != nil {
		c.resetStreamLocked(st, code)
		return
	}
	c.wbuf = appendRSTStream(c.wbuf, id, code)
	c.flushLocked()
}

func (c *conn) resetStreamLocked(st *stream, code uint32) {
	if !st.reset {
		st.reset = true
		c.wbuf = appendRSTStream(c.wbuf, st.id, code)
		c.flushLocked()
		if !st.dispatched {
			c.removeLocked(st)
		}
		c.wake()
		st.cancel()
	}
}

// wake wakes goroutines waiting on cond (for window, messages or a flush).
func (c *conn) wake() {
	if c.waiters > 0 {
		c.cond.Broadcast()
	}
}

// --- headers ---

// headerState is what a request's header block decodes to.
type headerState struct {
	size        uint32
	truncated   bool
	malformed   bool
	sawRegular  bool
	method      string
	path        string
	authority   int
	contentType string
	encoding    string
	timeout     string
	hasTimeout  bool
	md          metadata.MD
	mdErr       string
}

func (c *conn) onHeaders(h frameHeader, p []byte) error {
	if h.stream == 0 || h.stream%2 == 0 {
		return connError{errProtocol, "HEADERS on an invalid stream id"}
	}
	frag, err := unpad(h, p)
	if err != nil {
		return err
	}
	c.hs = headerState{}
	c.hdrOpen, c.hdrStream, c.hdrEnd, c.hdrFrames = true, h.stream, h.has(flagEndStream), 0
	c.dec.SetEmitEnabled(true)
	return c.headerFragment(frag, h.has(flagEndHeaders))
}

func (c *conn) headerFragment(frag []byte, end bool) error {
	if _, err := c.dec.Write(frag); err != nil {
		return connError{errCompression, err.Error()}
	}
	if !end {
		return nil
	}
	c.hdrOpen = false
	if err := c.dec.Close(); err != nil {
		return connError{errCompression, err.Error()}
	}
	return c.onRequestHeaders(c.hdrStream, c.hdrEnd)
}

// onField collects one decoded header field, enforcing the list size.
func (c *conn) onField(f hpack.HeaderField) {
	hs := &c.hs
	hs.size += uint32(len(f.Name) + len(f.Value) + 32)
	if hs.size > c.s.cfg.MaxHeaderListSize {
		hs.truncated = true
		c.dec.SetEmitEnabled(false)
		return
	}
	if f.Name == "" {
		hs.malformed = true
		return
	}
	if f.Name[0] == ':' {
		if hs.sawRegular {
			hs.malformed = true
			return
		}
		switch f.Name {
		case ":method":
			hs.malformed = hs.malformed || hs.method != ""
			hs.method = f.Value
		case ":path":
			hs.malformed = hs.malformed || hs.path != ""
			hs.path = f.Value
		case ":authority":
			hs.authority++
			hs.addMD(f.Name, f.Value)
		case ":scheme":
		default:
			hs.malformed = true
		}
		return
	}
	hs.sawRegular = true
	for i := 0; i < len(f.Name); i++ {
		if b := f.Name[i]; 'A' <= b && b <= 'Z' {
			hs.malformed = true // RFC 9113 §8.2.1
			return
		}
	}
	switch f.Name {
	case "content-type":
		hs.contentType = f.Value
		hs.addMD(f.Name, f.Value)
	case "grpc-encoding":
		hs.encoding = f.Value
	case "grpc-timeout":
		hs.timeout, hs.hasTimeout = f.Value, true
	case "te":
		if f.Value != "trailers" {
			hs.malformed = true
		}
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		hs.malformed = true // connection-specific (RFC 9113 §8.2.2)
	case "grpc-message-type", "grpc-message", "grpc-status":
	default:
		if strings.HasSuffix(f.Name, "-bin") {
			v, err := decodeBinHeader(f.Value)
			if err != nil {
				hs.mdErr = fmt.Sprintf("malformed binary metadata %q in header %q: %v", f.Value, f.Name, err)
				return
			}
			hs.addMD(f.Name, string(v))
			return
		}
		hs.addMD(f.Name, f.Value)
	}
}

func (hs *headerState) addMD(k, v string) {
	if hs.md == nil {
		hs.md = make(metadata.MD, 4)
	}
	hs.md[k] = append(hs.md[k], v)
}

// decodeBinHeader decodes a -bin header value, padded or not, as grpc-go
// does.
func decodeBinHeader(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}

// onRequestHeaders starts a stream from a complete header block, or
// ends one that a client closes with trailers.
func (c *conn) onRequestHeaders(id uint32, endStream bool) error {
	hs := &c.hs
	c.mu.Lock()
	if st := c.streams[id]; st != nil || id <= c.maxStreamID {
		defer c.mu.Unlock()
		if st == nil {
			return connError{errProtocol, fmt.Sprintf("HEADERS on stream %d, not above %d", id, c.maxStreamID)}
		}
		if !endStream || st.recvClosed {
			c.resetStreamLocked(st, errProtocol)
			return nil
		}
		c.endRecvLocked(st) // request trailers end the stream
		return nil
	}
	c.maxStreamID = id
	if c.draining && id > c.goAwayID {
		c.mu.Unlock()
		return nil // after GOAWAY: ignored, the client retries elsewhere
	}
	if len(c.streams) >= int(c.s.cfg.MaxConcurrentStreams) {
		c.wbuf = appendRSTStream(c.wbuf, id, errRefusedStream)
		c.flushLocked()
		c.mu.Unlock()
		return c.countReset()
	}
	c.mu.Unlock()
	switch {
	case hs.truncated:
		c.resetStream(id, errFrameSize) // as grpc-go: the list is over the limit
		return nil
	case hs.malformed || hs.method != "POST" || hs.path == "":
		c.resetStream(id, errProtocol)
		return nil
	case hs.authority > 1:
		c.earlyAbort(id, hs.contentType, 400, status.New(codes.Internal, "more than one :authority"), !endStream)
		return nil
	}
	subtype, ok := contentSubtype(hs.contentType)
	if !ok {
		c.earlyAbort(id, "", 415, status.Newf(codes.InvalidArgument, "invalid gRPC request content-type %q", hs.contentType), !endStream)
		return nil
	}
	var timeout time.Duration
	if hs.hasTimeout {
		var err error
		if timeout, err = decodeTimeout(hs.timeout); err != nil {
			c.earlyAbort(id, hs.contentType, 400, status.Newf(codes.Internal, "malformed grpc-timeout: %v", err), !endStream)
			return nil
		}
	}
	if hs.mdErr != "" {
		c.earlyAbort(id, hs.contentType, 400, status.New(codes.Internal, hs.mdErr), !endStream)
		return nil
	}
	st := &stream{c: c, id: id, path: hs.path, md: hs.md, subtype: subtype,
		recvWin: int64(c.s.cfg.InitialWindowSize)}
	if st.md == nil {
		st.md = metadata.MD{}
	}
	if hs.encoding != "" && hs.encoding != "identity" {
		st.comp = encoding.GetCompressor(hs.encoding)
		if st.comp == nil {
			c.earlyAbort(id, hs.contentType, 200, status.Newf(codes.Unimplemented, "grpc: Decompressor is not installed for grpc-encoding %q", hs.encoding), !endStream)
			return nil
		}
	}
	m := c.s.methods[hs.path]
	if m == nil {
		c.earlyAbort(id, hs.contentType, 200, unknownMethod(hs.path), !endStream)
		return nil
	}
	st.m = m
	if hs.hasTimeout {
		st.ctx, st.cancel = context.WithTimeout(c.baseCtx, timeout)
	} else {
		st.ctx, st.cancel = context.WithCancel(c.baseCtx)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		st.cancel()
		return nil
	}
	st.sendWin = c.peerInitWin
	c.streams[id] = st
	if m.stream != nil {
		st.dispatched = true
		st.recvClosed = endStream
		c.mu.Unlock()
		c.s.workers.run(st)
		return nil
	}
	if endStream {
		c.endRecvLocked(st)
	}
	c.mu.Unlock()
	return nil
}

func unknownMethod(path string) *status.Status {
	svc, mth, ok := splitMethod(path)
	if !ok {
		return status.Newf(codes.Unimplemented, "malformed method name: %q", path)
	}
	return status.Newf(codes.Unimplemented, "unknown method %v for service %v", mth, svc)
}

// contentSubtype returns the subtype of a gRPC content-type
// ("application/grpc" → "", "application/grpc+json" → "json").
func contentSubtype(ct string) (string, bool) {
	const base = "application/grpc"
	if !strings.HasPrefix(ct, base) {
		return "", false
	}
	if len(ct) == len(base) {
		return "", true
	}
	switch ct[len(base)] {
	case '+', ';':
		return ct[len(base)+1:], true
	}
	return "", false
}

// decodeTimeout parses a grpc-timeout value: up to 8 digits and a unit.
func decodeTimeout(s string) (time.Duration, error) {
	if len(s) < 2 || len(s) > 9 {
		return 0, fmt.Errorf("timeout string is the wrong length: %q", s)
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, fmt.Errorf("timeout unit is not recognized: %q", s)
	}
	var v int64
	for _, b := range []byte(s[:len(s)-1]) {
		if b < '0' || b > '9' {
			return 0, fmt.Errorf("timeout value is not a number: %q", s)
		}
		v = v*10 + int64(b-'0')
	}
	if hours := int64(unit / time.Hour); unit >= time.Hour && v > (1<<63-1)/int64(time.Hour)/hours {
		return 1<<63 - 1, nil
	}
	return time.Duration(v) * unit, nil
}

// earlyAbort answers a stream that never reaches a handler with a
// trailers-only response, and resets it if the client is still sending.
func (c *conn) earlyAbort(id uint32, ct string, httpStatus int, st *status.Status, rst bool) {
	if _, ok := contentSubtype(ct); !ok {
		ct = "application/grpc"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hbuf = c.hbuf[:0]
	c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: fmt.Sprint(httpStatus)})
	c.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: ct})
	c.appendStatusFields(st, nil)
	c.wbuf = appendHeaderBlock(c.wbuf, id, c.hbuf, true, c.peerMaxFrame)
	if rst {
		c.wbuf = appendRSTStream(c.wbuf, id, errNo)
	}
	c.flushLocked()
}

// --- data ---

func (c *conn) onData(h frameHeader, p []byte) error {
	if h.stream == 0 {
		return connError{errProtocol, "DATA on stream 0"}
	}
	n := int64(h.length)
	if n > c.recvConnWin {
		return connError{errFlowControl, "DATA over the connection window"}
	}
	c.recvConnWin -= n
	c.connUnacked += uint32(n)
	data, err := unpad(h, p)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.connUnacked >= c.s.cfg.ConnWindowSize/2 {
		c.wbuf = appendWindowUpdate(c.wbuf, 0, c.connUnacked)
		c.recvConnWin += int64(c.connUnacked)
		c.connUnacked = 0
		c.flushLocked()
	}
	st := c.streams[h.stream]
	if st == nil {
		idle := h.stream > c.maxStreamID
		c.mu.Unlock()
		if idle {
			return connError{errProtocol, "DATA on an idle stream"}
		}
		return nil // a stream this side has closed or reset
	}
	defer c.mu.Unlock()
	if st.reset {
		return nil
	}
	if st.recvClosed {
		c.resetStreamLocked(st, errStreamClosed)
		return nil
	}
	if n > st.recvWin {
		c.resetStreamLocked(st, errFlowControl)
		return nil
	}
	st.recvWin -= n
	if st.m.stream != nil {
		c.streamData(st, data, n)
	} else if err := c.unaryData(st, data, n); err != nil {
		return err
	}
	if h.has(flagEndStream) {
		c.endRecvLocked(st)
	}
	return nil
}

// unaryData buffers a unary request's body. The stream's window is given
// back as data arrives (the message is bounded by MaxRecvMsgSize, checked
// as soon as its length is known).
func (c *conn) unaryData(st *stream, data []byte, n int64) error {
	if st.tooLarge || st.extra {
		c.ackStreamLocked(st, n)
		return nil
	}
	if st.rbuf == nil {
		st.rbuf = getBuf()
	}
	*st.rbuf = append(*st.rbuf, data...)
	if b := *st.rbuf; len(b) >= 5 {
		l := binary.BigEndian.Uint32(b[1:])
		if int64(l) > int64(c.s.cfg.MaxRecvMsgSize) {
			st.tooLarge = true
			putBuf(st.rbuf)
			st.rbuf = nil
			c.answerLocked(st, status.Newf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", l, c.s.cfg.MaxRecvMsgSize))
			return nil
		}
		if uint64(len(b)) > 5+uint64(l) {
			// A second message: answered by the decoder; keep no more.
			st.extra = true
			*st.rbuf = b[:5+l]
		}
	}
	c.ackStreamLocked(st, n)
	return nil
}

// streamData queues a streaming call's bytes for RecvMsg. Bytes that
// complete no message are acknowledged at once (so a message larger than
// the window can arrive); the rest when RecvMsg consumes them.
func (c *conn) streamData(st *stream, data []byte, n int64) {
	if st.tooLarge {
		c.ackStreamLocked(st, n) // RecvMsg answers it; keep no more
		return
	}
	if st.rbuf == nil {
		st.rbuf = getBuf()
	}
	*st.rbuf = append(*st.rbuf, data...)
	if b := *st.rbuf; len(b) >= 5 && int64(binary.BigEndian.Uint32(b[1:])) > int64(c.s.cfg.MaxRecvMsgSize) {
		st.tooLarge = true
		*st.rbuf = b[:5]
		c.ackStreamLocked(st, n)
		c.wake()
		return
	}
	if completeMessage(*st.rbuf) {
		st.held += n
	} else {
		c.ackStreamLocked(st, n)
	}
	c.wake()
}

func completeMessage(b []byte) bool {
	return len(b) >= 5 && uint64(len(b)-5) >= uint64(binary.BigEndian.Uint32(b[1:]))
}

// ackStreamLocked gives n bytes of a stream's window back, sending a
// WINDOW_UPDATE once half the window is owed.
func (c *conn) ackStreamLocked(st *stream, n int64) {
	st.unacked += n
	if st.unacked >= int64(c.s.cfg.InitialWindowSize/2) && !st.recvClosed && !st.reset {
		c.wbuf = appendWindowUpdate(c.wbuf, st.id, uint32(st.unacked))
		st.recvWin += st.unacked
		st.unacked = 0
		c.flushLocked()
	}
}

// endRecvLocked marks the client's half closed; a unary call is dispatched.
func (c *conn) endRecvLocked(st *stream) {
	st.recvClosed = true
	if st.m.stream != nil {
		c.wake()
		return
	}
	if st.tooLarge || st.dispatched {
		return
	}
	st.dispatched = true
	c.running++
	c.s.workers.run(st)
}

// --- writing ---

// flushLocked writes what is pending. If another goroutine is writing, it
// returns at once: that writer writes what was appended meanwhile before
// it stops. mu is released during the write.
func (c *conn) flushLocked() {
	if c.flushing {
		return
	}
	c.flushing = true
	for len(c.wbuf) > 0 && c.werr == nil {
		b := c.wbuf
		c.wbuf = c.wspare[:0]
		c.mu.Unlock()
		_, err := c.nc.Write(b)
		c.mu.Lock()
		if cap(b) > 4*maxPending {
			b = make([]byte, 0, 16<<10)
		}
		c.wspare = b[:0]
		if err != nil {
			c.werr = err
		}
		c.wake()
	}
	c.flushing = false
}

// waitLocked waits for a broadcast on cond.
func (c *conn) waitLocked() {
	c.waiters++
	c.cond.Wait()
	c.waiters--
}

// answerLocked answers a stream that has not been dispatched and forgets it.
func (c *conn) answerLocked(st *stream, s *status.Status) {
	c.hbuf = c.hbuf[:0]
	c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	c.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: st.contentType()})
	c.appendStatusFields(s, nil)
	c.wbuf = appendHeaderBlock(c.wbuf, st.id, c.hbuf, true, c.peerMaxFrame)
	if !st.recvClosed {
		c.wbuf = appendRSTStream(c.wbuf, st.id, errNo)
	}
	st.done = true
	c.removeLocked(st)
	c.flushLocked()
	st.cancel()
}

// removeLocked forgets a stream; a draining connection closes after its last.
func (c *conn) removeLocked(st *stream) {
	if c.streams[st.id] != st {
		return
	}
	delete(c.streams, st.id)
	if st.rbuf != nil && !st.dispatched {
		putBuf(st.rbuf)
		st.rbuf = nil
	}
	if c.draining && len(c.streams) == 0 {
		go c.finishDrain()
	}
}

// goAway starts a graceful close: no stream after the last one seen is
// served, and the connection closes once those finish.
func (c *conn) goAway() {
	c.mu.Lock()
	if c.draining || c.closed {
		c.mu.Unlock()
		return
	}
	c.draining = true
	c.goAwayID = c.maxStreamID
	c.wbuf = appendGoAway(c.wbuf, c.goAwayID, errNo, "")
	c.flushLocked()
	idle := len(c.streams) == 0
	c.mu.Unlock()
	if idle {
		c.finishDrain()
	}
}

// finishDrain shuts the write side and gives the client a moment to close,
// so that the last responses are read rather than lost to a reset.
func (c *conn) finishDrain() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = c.nc.SetReadDeadline(time.Now().Add(drainLinger))
		return
	}
	c.close(io.EOF)
}

// close closes the connection and cancels its calls.
func (c *conn) close(error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.ackTimer != nil {
		c.ackTimer.Stop()
	}
	if c.werr == nil {
		c.werr = net.ErrClosed
	}
	streams := make([]*stream, 0, len(c.streams))
	for _, st := range c.streams {
		streams = append(streams, st)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	c.nc.Close()
	for _, st := range streams {
		if st.cancel != nil {
			st.cancel()
		}
	}
}

// --- pooled request buffers ---

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}
