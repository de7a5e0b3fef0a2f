package h2grpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HTTP/2 frame types, flags, settings and error codes (RFC 9113).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	framePriority     = 0x2
	frameRSTStream    = 0x3
	frameSettings     = 0x4
	framePushPromise  = 0x5
	framePing         = 0x6
	frameGoAway       = 0x7
	frameWindowUpdate = 0x8
	frameContinuation = 0x9

	flagEndStream  = 0x1
	flagAck        = 0x1
	flagEndHeaders = 0x4
	flagPadded     = 0x8
	flagPriority   = 0x20

	settingHeaderTableSize      = 0x1
	settingEnablePush           = 0x2
	settingMaxConcurrentStreams = 0x3
	settingInitialWindowSize    = 0x4
	settingMaxFrameSize         = 0x5
	settingMaxHeaderListSize    = 0x6

	errNo                 = 0x0
	errProtocol           = 0x1
	errInternal           = 0x2
	errFlowControl        = 0x3
	errStreamClosed       = 0x5
	errFrameSize          = 0x6
	errRefusedStream      = 0x7
	errCancel             = 0x8
	errCompression        = 0x9
	errEnhanceYourCalm    = 0xb
	frameHeaderLen        = 9
	defaultMaxFrameSize   = 16384
	maxFrameSizeLimit     = 1<<24 - 1
	defaultInitialWindow  = 65535
	maxWindow             = 1<<31 - 1
	clientPreface         = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	defaultHeaderTableLen = 4096
)

// connError is an HTTP/2 connection error: the connection is closed with a
// GOAWAY carrying code.
type connError struct {
	code  uint32
	debug string
}

func (e connError) Error() string {
	return fmt.Sprintf("http2 connection error %d: %s", e.code, e.debug)
}

// frameHeader is a frame's fixed 9-byte header.
type frameHeader struct {
	length uint32
	typ    uint8
	flags  uint8
	stream uint32
}

func (h frameHeader) has(f uint8) bool { return h.flags&f != 0 }

// frameReader reads frames from a buffered connection without copying:
// a frame's payload is a slice of the read buffer, valid until the next
// call to next.
type frameReader struct {
	r        *bufio.Reader
	maxFrame uint32 // SETTINGS_MAX_FRAME_SIZE we advertise
	discard  int
}

func newFrameReader(r io.Reader, maxFrame uint32) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, int(maxFrame)+frameHeaderLen), maxFrame: maxFrame}
}

// readPreface reads and checks the client connection preface.
func (fr *frameReader) readPreface() error {
	p, err := fr.r.Peek(len(clientPreface))
	if err != nil {
		return err
	}
	if string(p) != clientPreface {
		return connError{errProtocol, "bad client preface"}
	}
	_, err = fr.r.Discard(len(clientPreface))
	return err
}

// next returns the next frame. A frame longer than maxFrame is a
// connection error (FRAME_SIZE_ERROR), checked before its payload is read.
func (fr *frameReader) next() (frameHeader, []byte, error) {
	if fr.discard > 0 {
		if _, err := fr.r.Discard(fr.discard); err != nil {
			return frameHeader{}, nil, err
		}
		fr.discard = 0
	}
	hb, err := fr.r.Peek(frameHeaderLen)
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			err = io.ErrUnexpectedEOF
		}
		return frameHeader{}, nil, err
	}
	h := frameHeader{
		length: uint32(hb[0])<<16 | uint32(hb[1])<<8 | uint32(hb[2]),
		typ:    hb[3],
		flags:  hb[4],
		stream: binary.BigEndian.Uint32(hb[5:]) & (1<<31 - 1),
	}
	if h.length > fr.maxFrame {
		return h, nil, connError{errFrameSize, fmt.Sprintf("frame of %d bytes over the %d-byte limit", h.length, fr.maxFrame)}
	}
	n := frameHeaderLen + int(h.length)
	b, err := fr.r.Peek(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	fr.discard = n
	return h, b[frameHeaderLen:], nil
}

// unpad strips a PADDED frame's padding (and, for HEADERS, the priority
// fields).
func unpad(h frameHeader, p []byte) ([]byte, error) {
	if h.has(flagPadded) {
		if len(p) < 1 {
			return nil, connError{errProtocol, "padded frame without pad length"}
		}
		pad := int(p[0])
		p = p[1:]
		if pad > len(p) {
			return nil, connError{errProtocol, "padding longer than the frame"}
		}
		p = p[:len(p)-pad]
	}
	if h.typ == frameHeaders && h.has(flagPriority) {
		if len(p) < 5 {
			return nil, connError{errProtocol, "headers frame too short for its priority"}
		}
		p = p[5:]
	}
	return p, nil
}

// appendFrameHeader appends a frame header.
func appendFrameHeader(b []byte, length int, typ, flags uint8, stream uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), typ, flags,
		byte(stream>>24), byte(stream>>16), byte(stream>>8), byte(stream))
}

func appendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendRSTStream(b []byte, stream, code uint32) []byte {
	return appendUint32(appendFrameHeader(b, 4, frameRSTStream, 0, stream), code)
}

func appendWindowUpdate(b []byte, stream, inc uint32) []byte {
	return appendUint32(appendFrameHeader(b, 4, frameWindowUpdate, 0, stream), inc)
}

func appendGoAway(b []byte, last, code uint32, debug string) []byte {
	b = appendFrameHeader(b, 8+len(debug), frameGoAway, 0, 0)
	b = appendUint32(appendUint32(b, last), code)
	return append(b, debug...)
}

// appendHeaderBlock appends a header block as a HEADERS frame followed by
// as many CONTINUATION frames as maxFrame requires.
func appendHeaderBlock(b []byte, stream uint32, block []byte, endStream bool, maxFrame int) []byte {
	typ := uint8(frameHeaders)
	for first := true; first || len(block) > 0; first = false {
		n := min(len(block), maxFrame)
		var flags uint8
		if first && endStream {
			flags |= flagEndStream
		}
		if n == len(block) {
			flags |= flagEndHeaders
		}
		b = appendFrameHeader(b, n, typ, flags, stream)
		b = append(b, block[:n]...)
		block = block[n:]
		typ = frameContinuation
	}
	return b
}
