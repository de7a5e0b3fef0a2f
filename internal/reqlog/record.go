package reqlog

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"
)

// A spool record is one event, framed so that a record cut short by a
// crash (or a disk that lost the tail of a file) is recognised:
//
//	length   uint32, little endian: bytes of payload
//	checksum uint32, little endian: CRC-32C of payload
//	payload  version byte (1), then the event's fields: id, type, source,
//	         time (varint Unix nanoseconds), datacontenttype, the number of
//	         extensions and each key and value, data. Strings and data are
//	         a uvarint length followed by the bytes.
//
// The reader never trusts a length before checking it against the bytes
// the segment holds, so a corrupt length cannot make it allocate.
const (
	recordHeader  = 8
	recordVersion = 1
	// maxRecord bounds one event (the server's body limit is far below).
	maxRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks bytes that are not a whole, intact record.
var errCorrupt = errors.New("corrupt spool record")

// appendRecord appends ev, framed, to b.
func appendRecord(b []byte, ev *Event) []byte {
	start := len(b)
	b = append(b, make([]byte, recordHeader)...)
	b = append(b, recordVersion)
	b = appendString(b, ev.ID)
	b = appendString(b, ev.Type)
	b = appendString(b, ev.Source)
	b = binary.AppendVarint(b, ev.Time.UnixNano())
	b = appendString(b, ev.ContentType)
	b = binary.AppendUvarint(b, uint64(len(ev.Extensions)))
	for k, v := range ev.Extensions {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Data)))
	b = append(b, ev.Data...)
	payload := b[start+recordHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readRecord decodes the record at the start of b and returns it with its
// size. n == 0 and a nil error mean b holds only the beginning of a record;
// errCorrupt means the bytes can never become one.
func readRecord(b []byte) (ev *Event, n int, err error) {
	if len(b) < recordHeader {
		return nil, 0, nil
	}
	size := binary.LittleEndian.Uint32(b)
	if size > maxRecord {
		return nil, 0, errCorrupt
	}
	end := recordHeader + int(size)
	if len(b) < end {
		return nil, 0, nil
	}
	payload := b[recordHeader:end]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, errCorrupt
	}
	ev, err = decodeEvent(payload)
	if err != nil {
		return nil, 0, err
	}
	return ev, end, nil
}

// decodeEvent reads a record's payload; every length is checked against
// what is left.
func decodeEvent(p []byte) (*Event, error) {
	d := decoder{b: p}
	if v := d.byte(); v != recordVersion {
		return nil, errCorrupt
	}
	ev := &Event{}
	ev.ID = d.string()
	ev.Type = d.string()
	ev.Source = d.string()
	ns, k := binary.Varint(d.b)
	if k <= 0 {
		return nil, errCorrupt
	}
	d.b = d.b[k:]
	ev.Time = time.Unix(0, ns).UTC()
	ev.ContentType = d.string()
	next := d.uvarint()
	// Each extension takes at least two bytes (two empty strings).
	if next > uint64(len(d.b))/2 {
		return nil, errCorrupt
	}
	if next > 0 {
		ev.Extensions = make(map[string]string, next)
		for range next {
			k := d.string()
			ev.Extensions[k] = d.string()
		}
	}
	if data := d.bytes(); len(data) > 0 {
		ev.Data = append([]byte(nil), data...)
	}
	if d.bad || len(d.b) != 0 {
		return nil, errCorrupt
	}
	return ev, nil
}

// decoder reads fields until the first error, after which it returns zero
// values and keeps bad set.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) byte() byte {
	if d.bad || len(d.b) == 0 {
		d.bad = true
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
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

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) string() string { return string(d.bytes()) }
