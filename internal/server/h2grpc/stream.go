package h2grpc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"strconv"

	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// stream is one call. Fields other than those set before dispatch are
// under c.mu.
type stream struct {
	c       *conn
	id      uint32
	path    string
	m       *method
	md      metadata.MD
	subtype string
	comp    encoding.Compressor // the request's grpc-encoding, nil for identity
	ctx     context.Context
	cancel  context.CancelFunc

	dispatched  bool
	recvClosed  bool
	reset       bool
	done        bool
	tooLarge    bool
	extra       bool
	rbuf        *[]byte
	recvWin     int64
	unacked     int64
	held        int64
	sendWin     int64
	headersSent bool
	header      metadata.MD
	trailer     metadata.MD
	decoded     bool
	stopWake    func() bool
}

var (
	_ grpc.ServerTransportStream = (*stream)(nil)
	_ grpc.ServerStream          = (*serverStream)(nil)
)

// run serves the call on a worker.
func (st *stream) run() {
	ctx := metadata.NewIncomingContext(st.ctx, st.md)
	ctx = grpc.NewContextWithServerTransportStream(ctx, st)
	var (
		resp any
		err  error
	)
	if u := st.m.unary; u != nil {
		resp, err = u.Handler(st.m.srv, ctx, st.decode, st.c.s.unaryInt)
		st.c.mu.Lock()
		if st.rbuf != nil {
			putBuf(st.rbuf)
			st.rbuf = nil
		}
		st.c.mu.Unlock()
	} else {
		err = st.m.stream.Handler(st.m.srv, &serverStream{st: st, ctx: ctx})
	}
	st.finish(resp, err, st.m.unary != nil)
	st.cancel()
	if st.stopWake != nil {
		st.stopWake()
	}
}

// decode is a unary handler's dec function.
func (st *stream) decode(v any) error {
	c := st.c
	c.mu.Lock()
	var msg []byte
	if st.rbuf != nil {
		msg = *st.rbuf
	}
	decoded, extra := st.decoded, st.extra
	st.decoded = true
	c.mu.Unlock()
	switch {
	case decoded:
		return status.Error(codes.Internal, "grpc: the request was already decoded")
	case len(msg) == 0:
		return status.Error(codes.Internal, "cardinality violation: received no request message from non-client-streaming RPC")
	case len(msg) < 5 || !completeMessage(msg):
		return status.Error(codes.Internal, io.ErrUnexpectedEOF.Error())
	case extra:
		return status.Error(codes.Internal, "cardinality violation: received multiple request messages for non-client-streaming RPC")
	}
	return st.unmarshal(msg, v)
}

// unmarshal decodes one length-prefixed message.
func (st *stream) unmarshal(msg []byte, v any) error {
	body := msg[5:]
	if msg[0]&1 != 0 {
		if st.comp == nil {
			return status.Error(codes.Internal, "grpc: compressed flag set with identity or empty encoding")
		}
		r, err := st.comp.Decompress(bytes.NewReader(body))
		if err != nil {
			return status.Errorf(codes.Internal, "grpc: failed to decompress the received message: %v", err)
		}
		max := st.c.s.cfg.MaxRecvMsgSize
		body, err = io.ReadAll(io.LimitReader(r, int64(max)+1))
		if err != nil {
			return status.Errorf(codes.Internal, "grpc: failed to decompress the received message: %v", err)
		}
		if len(body) > max {
			return status.Errorf(codes.ResourceExhausted, "grpc: received message after decompression larger than max %d", max)
		}
	}
	if err := st.c.s.cfg.Codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(body)}, v); err != nil {
		return status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
	}
	return nil
}

// finish answers the call: its message if unary and err is nil, then its
// status.
func (st *stream) finish(resp any, err error, unary bool) {
	var data mem.BufferSlice
	if err == nil && unary {
		data, err = st.marshal(resp)
	}
	s := statusOK
	if err != nil {
		var ok bool
		if s, ok = status.FromError(err); !ok {
			s = status.FromContextError(err)
		}
	}
	c := st.c
	c.mu.Lock()
	sent := true
	if data != nil {
		sent = c.sendMessageLocked(st, data) == nil
	}
	if sent && !st.reset && !st.done && c.werr == nil {
		c.hbuf = c.hbuf[:0]
		if !st.headersSent {
			c.appendResponseHeaders(st) // trailers-only
		}
		c.appendStatusFields(s, st.trailer)
		c.wbuf = appendHeaderBlock(c.wbuf, st.id, c.hbuf, true, c.peerMaxFrame)
		if !st.recvClosed {
			c.wbuf = appendRSTStream(c.wbuf, st.id, errNo)
		}
		c.resetPings = true
		if c.running > 1 && !c.flushing {
			// Other calls of this connection are under way: let them
			// run first, so that one write carries several answers.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
		}
		c.flushLocked()
	}
	if unary {
		c.running--
	}
	st.done = true
	c.removeLocked(st)
	c.mu.Unlock()
	data.Free()
}

var statusOK = status.New(codes.OK, "")

// marshal encodes (and compresses) a message.
func (st *stream) marshal(m any) (mem.BufferSlice, error) {
	data, err := st.c.s.cfg.Codec.Marshal(m)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "grpc: error while marshaling: %v", err)
	}
	if st.comp != nil {
		var buf bytes.Buffer
		w, err := st.comp.Compress(&buf)
		if err == nil {
			for _, b := range data {
				if _, err = w.Write(b.ReadOnlyData()); err != nil {
					break
				}
			}
		}
		if err == nil {
			err = w.Close()
		}
		data.Free()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "grpc: error while compressing: %v", err)
		}
		data = mem.BufferSlice{mem.SliceBuffer(buf.Bytes())}
	}
	if n := data.Len(); n > st.c.s.cfg.MaxSendMsgSize {
		data.Free()
		return nil, status.Errorf(codes.ResourceExhausted, "grpc: trying to send message larger than max (%d vs. %d)", n, st.c.s.cfg.MaxSendMsgSize)
	}
	return data, nil
}

// sendMessageLocked writes the response headers if not yet sent and one
// message in DATA frames within the flow-control windows, waiting for
// WINDOW_UPDATEs when they run out.
func (c *conn) sendMessageLocked(st *stream, data mem.BufferSlice) error {
	if err := st.writable(); err != nil {
		return err
	}
	if !st.headersSent {
		c.hbuf = c.hbuf[:0]
		c.appendResponseHeaders(st)
		c.wbuf = appendHeaderBlock(c.wbuf, st.id, c.hbuf, false, c.peerMaxFrame)
		st.headersSent = true
	}
	c.resetPings = true
	var prefix [5]byte
	if st.comp != nil {
		prefix[0] = 1
	}
	binary.BigEndian.PutUint32(prefix[1:], uint32(data.Len()))
	src := msgSource{prefix: prefix[:], bufs: data}
	left := 5 + data.Len()
	for left > 0 {
		n := min(int64(left), int64(c.peerMaxFrame), c.sendConnWin, st.sendWin, int64(maxPending-len(c.wbuf)))
		if n <= 0 {
			c.flushLocked()
			if err := st.writable(); err != nil {
				return err
			}
			if c.sendConnWin > 0 && st.sendWin > 0 && len(c.wbuf) < maxPending {
				continue
			}
			st.wakeOnDone()
			c.waitLocked()
			if err := st.writable(); err != nil {
				return err
			}
			continue
		}
		c.wbuf = appendFrameHeader(c.wbuf, int(n), frameData, 0, st.id)
		c.wbuf = src.appendN(c.wbuf, int(n))
		c.resetPings = true
		left -= int(n)
		c.sendConnWin -= n
		st.sendWin -= n
	}
	return nil
}

// writable says why nothing more can be written on the stream, if so.
func (st *stream) writable() error {
	switch {
	case st.c.werr != nil:
		return status.Error(codes.Unavailable, "connection closed")
	case st.reset || st.done:
		return status.Error(codes.Canceled, "stream reset by the client")
	case st.ctx.Err() != nil:
		return status.FromContextError(st.ctx.Err()).Err()
	}
	return nil
}

// wakeOnDone makes the stream's context ending wake waiters on cond
// (registered the first time a call waits).
func (st *stream) wakeOnDone() {
	if st.stopWake == nil {
		c := st.c
		st.stopWake = context.AfterFunc(st.ctx, func() {
			c.mu.Lock()
			c.cond.Broadcast()
			c.mu.Unlock()
		})
	}
}

// msgSource yields a message's bytes: its 5-byte prefix, then its buffers.
type msgSource struct {
	prefix []byte
	bufs   mem.BufferSlice
	i, off int
}

func (s *msgSource) appendN(b []byte, n int) []byte {
	for n > 0 {
		if len(s.prefix) > 0 {
			k := min(n, len(s.prefix))
			b = append(b, s.prefix[:k]...)
			s.prefix = s.prefix[k:]
			n -= k
			continue
		}
		d := s.bufs[s.i].ReadOnlyData()[s.off:]
		k := min(n, len(d))
		b = append(b, d[:k]...)
		n -= k
		s.off += k
		if s.off == len(s.bufs[s.i].ReadOnlyData()) {
			s.i, s.off = s.i+1, 0
		}
	}
	return b
}

func (st *stream) contentType() string {
	if st.subtype == "" {
		return "application/grpc"
	}
	return "application/grpc+" + st.subtype
}

// appendResponseHeaders encodes the response headers into c.hbuf.
func (c *conn) appendResponseHeaders(st *stream) {
	c.enc.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	c.enc.WriteField(hpack.HeaderField{Name: "content-type", Value: st.contentType()})
	if st.comp != nil {
		c.enc.WriteField(hpack.HeaderField{Name: "grpc-encoding", Value: st.comp.Name()})
	}
	c.appendMD(st.header)
	st.headersSent = true
}

// appendStatusFields encodes a status as trailer fields into c.hbuf.
func (c *conn) appendStatusFields(s *status.Status, trailer metadata.MD) {
	c.enc.WriteField(hpack.HeaderField{Name: "grpc-status", Value: strconv.Itoa(int(s.Code()))})
	if msg := s.Message(); msg != "" {
		c.enc.WriteField(hpack.HeaderField{Name: "grpc-message", Value: encodeGRPCMessage(msg), Sensitive: true})
	}
	if p := s.Proto(); len(p.GetDetails()) > 0 {
		if b, err := proto.Marshal(p); err == nil {
			c.enc.WriteField(hpack.HeaderField{Name: "grpc-status-details-bin", Value: base64.RawStdEncoding.EncodeToString(b), Sensitive: true})
		}
	}
	c.appendMD(trailer)
}

func (c *conn) appendMD(md metadata.MD) {
	for k, vs := range md {
		if isReserved(k) {
			continue
		}
		bin := len(k) > 4 && k[len(k)-4:] == "-bin"
		for _, v := range vs {
			if bin {
				v = base64.RawStdEncoding.EncodeToString([]byte(v))
			}
			c.enc.WriteField(hpack.HeaderField{Name: k, Value: v})
		}
	}
}

// isReserved reports headers a handler's metadata may not set.
func isReserved(k string) bool {
	if k == "" || k[0] == ':' {
		return true
	}
	switch k {
	case "content-type", "user-agent", "grpc-message-type", "grpc-encoding", "grpc-message",
		"grpc-status", "grpc-timeout", "grpc-status-details-bin", "te":
		return true
	}
	return false
}

// encodeGRPCMessage percent-encodes a status message (the gRPC
// protocol's grpc-message: bytes outside printable ASCII and '%').
func encodeGRPCMessage(msg string) string {
	clean := true
	for i := 0; i < len(msg); i++ {
		if b := msg[i]; b < ' ' || b > '~' || b == '%' {
			clean = false
			break
		}
	}
	if clean {
		return msg
	}
	var sb []byte
	for i := 0; i < len(msg); i++ {
		if b := msg[i]; b >= ' ' && b <= '~' && b != '%' {
			sb = append(sb, b)
		} else {
			sb = fmt.Appendf(sb, "%%%02X", b)
		}
	}
	return string(sb)
}

// --- grpc.ServerTransportStream (grpc.SetHeader and friends) ---

// Method implements grpc.ServerTransportStream.
func (st *stream) Method() string { return st.path }

// SetHeader implements grpc.ServerTransportStream.
func (st *stream) SetHeader(md metadata.MD) error {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.headersSent || st.done {
		return status.Error(codes.Internal, "transport: SetHeader called after headers were sent")
	}
	st.header = metadata.Join(st.header, md)
	return nil
}

// SendHeader implements grpc.ServerTransportStream.
func (st *stream) SendHeader(md metadata.MD) error {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.headersSent || st.done {
		return status.Error(codes.Internal, "transport: SendHeader called multiple times")
	}
	if err := st.writable(); err != nil {
		return err
	}
	st.header = metadata.Join(st.header, md)
	c.hbuf = c.hbuf[:0]
	c.appendResponseHeaders(st)
	c.wbuf = appendHeaderBlock(c.wbuf, st.id, c.hbuf, false, c.peerMaxFrame)
	c.resetPings = true
	c.flushLocked()
	return nil
}

// SetTrailer implements grpc.ServerTransportStream.
func (st *stream) SetTrailer(md metadata.MD) error {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.done {
		return status.Error(codes.Internal, "transport: SetTrailer called after the call ended")
	}
	st.trailer = metadata.Join(st.trailer, md)
	return nil
}

// --- grpc.ServerStream for streaming methods ---

type serverStream struct {
	st  *stream
	ctx context.Context
}

func (ss *serverStream) Context() context.Context        { return ss.ctx }
func (ss *serverStream) SetHeader(md metadata.MD) error  { return ss.st.SetHeader(md) }
func (ss *serverStream) SendHeader(md metadata.MD) error { return ss.st.SendHeader(md) }
func (ss *serverStream) SetTrailer(md metadata.MD)       { _ = ss.st.SetTrailer(md) }

// SendMsg implements grpc.ServerStream.
func (ss *serverStream) SendMsg(m any) error {
	data, err := ss.st.marshal(m)
	if err != nil {
		return err
	}
	defer data.Free()
	c := ss.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.sendMessageLocked(ss.st, data); err != nil {
		return err
	}
	c.flushLocked()
	if c.werr != nil {
		return status.Error(codes.Unavailable, "connection closed")
	}
	return nil
}

// RecvMsg implements grpc.ServerStream: the next message, io.EOF once the
// client has half-closed, or the call's end.
func (ss *serverStream) RecvMsg(m any) error {
	st, c := ss.st, ss.st.c
	c.mu.Lock()
	for {
		if st.reset || c.closed {
			c.mu.Unlock()
			return status.Error(codes.Canceled, "stream reset by the client")
		}
		if err := st.ctx.Err(); err != nil {
			c.mu.Unlock()
			return status.FromContextError(err).Err()
		}
		if st.rbuf != nil && completeMessage(*st.rbuf) {
			b := *st.rbuf
			l := binary.BigEndian.Uint32(b[1:])
			if int64(l) > int64(c.s.cfg.MaxRecvMsgSize) {
				c.mu.Unlock()
				return status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", l, c.s.cfg.MaxRecvMsgSize)
			}
			msg := b[:5+l]
			*st.rbuf = b[5+l:]
			// Bytes held back as complete messages are given back now.
			if !completeMessage(*st.rbuf) {
				n := st.held
				st.held = 0
				c.ackStreamLocked(st, n)
			}
			c.mu.Unlock()
			return st.unmarshal(msg, m)
		}
		if st.rbuf != nil && len(*st.rbuf) >= 5 {
			if l := binary.BigEndian.Uint32((*st.rbuf)[1:]); int64(l) > int64(c.s.cfg.MaxRecvMsgSize) {
				c.mu.Unlock()
				return status.Errorf(codes.ResourceExhausted, "grpc: received message larger than max (%d vs. %d)", l, c.s.cfg.MaxRecvMsgSize)
			}
		}
		if st.recvClosed {
			partial := st.rbuf != nil && len(*st.rbuf) > 0
			c.mu.Unlock()
			if partial {
				return status.Error(codes.Internal, io.ErrUnexpectedEOF.Error())
			}
			return io.EOF
		}
		st.wakeOnDone()
		c.waitLocked()
	}
}
