// Package frame owns the record framing shared by Ferry's append-only
// files (the request logger's spool, the quality journal): a uint32 payload
// length, a uint32 CRC-32C of the payload (both little-endian), then the
// payload; and the field codec of those payloads (uvarints, varints,
// float64s and length-prefixed bytes). Readers never trust a length before
// checking it against the bytes they hold, so a torn or hostile file can
// neither crash them nor make them allocate without bound.
package frame

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
)

// HeaderSize is the size of a frame header.
const HeaderSize = 8

// ErrCorrupt marks bytes that are not a whole, intact frame or payload.
var ErrCorrupt = errors.New("torn or corrupt record")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the CRC-32C frames carry, for small headers of a file's own.
func Checksum(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

// Append appends to b a frame whose payload fill appends.
func Append(b []byte, fill func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = fill(b)
	p := b[start+HeaderSize:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(p)))
	binary.LittleEndian.PutUint32(b[start+4:], Checksum(p))
	return b
}

// PayloadLen reads a header's payload length; an empty payload or one over
// max is ErrCorrupt.
func PayloadLen(h []byte, max int) (int, error) {
	n := binary.LittleEndian.Uint32(h)
	if n == 0 || uint64(n) > uint64(max) {
		return 0, ErrCorrupt
	}
	return int(n), nil
}

// Check verifies payload p against its header h.
func Check(h, p []byte) error {
	if Checksum(p) != binary.LittleEndian.Uint32(h[4:]) {
		return ErrCorrupt
	}
	return nil
}

// Next splits the frame at the start of b: its payload and whole size.
// n == 0 with a nil error means b holds only the beginning of a frame;
// ErrCorrupt means the bytes can never become one.
func Next(b []byte, max int) (payload []byte, n int, err error) {
	if len(b) < HeaderSize {
		return nil, 0, nil
	}
	size, err := PayloadLen(b, max)
	if err != nil {
		return nil, 0, err
	}
	end := HeaderSize + size
	if len(b) < end {
		return nil, 0, nil
	}
	if err := Check(b[:HeaderSize], b[HeaderSize:end]); err != nil {
		return nil, 0, err
	}
	return b[HeaderSize:end], end, nil
}

// AppendString appends s as a uvarint length and its bytes.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendFloat appends v as 8 little-endian bytes.
func AppendFloat(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// Decoder reads a payload's fields until the first error, after which
// every read returns a zero value and Err reports ErrCorrupt.
type Decoder struct {
	b   []byte
	bad bool
}

// NewDecoder reads p.
func NewDecoder(p []byte) *Decoder { return &Decoder{b: p} }

// Fail marks the payload corrupt (a field the caller found invalid).
func (d *Decoder) Fail() { d.bad = true }

// Err is ErrCorrupt after a failed read, or when bytes are left over.
func (d *Decoder) Err() error {
	if d.bad || len(d.b) != 0 {
		return ErrCorrupt
	}
	return nil
}

// Len is the number of bytes not read yet.
func (d *Decoder) Len() int { return len(d.b) }

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if d.bad || len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.bad {
		return 0
	}
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[k:]
	return v
}

// Varint reads a signed varint.
func (d *Decoder) Varint() int64 {
	if d.bad {
		return 0
	}
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[k:]
	return v
}

// Count reads a count of items that each take at least one byte, so it
// can never exceed what is left (it sizes allocations).
func (d *Decoder) Count() int {
	n := d.Uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return 0
	}
	return int(n)
}

// Float reads 8 little-endian bytes as a float64.
func (d *Decoder) Float() float64 {
	if d.bad || len(d.b) < 8 {
		d.bad = true
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

// Bytes reads length-prefixed bytes (aliasing the payload).
func (d *Decoder) Bytes() []byte {
	n := d.Count()
	if d.bad {
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

// String reads a length-prefixed string.
func (d *Decoder) String() string { return string(d.Bytes()) }
