package reqlog

import (
	"encoding/binary"
	"time"

	"github.com/ferryserve/ferry/internal/frame"
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
	recordHeader  = frame.HeaderSize
	recordVersion = 1
	// maxRecord bounds one event (the server's body limit is far below).
	maxRecord = 1 << 30
)

// errCorrupt marks bytes that are not a whole, intact record.
var errCorrupt = frame.ErrCorrupt

// appendRecord appends ev, framed, to b.
func appendRecord(b []byte, ev *Event) []byte {
	return frame.Append(b, func(b []byte) []byte {
		b = append(b, recordVersion)
		b = frame.AppendString(b, ev.ID)
		b = frame.AppendString(b, ev.Type)
		b = frame.AppendString(b, ev.Source)
		b = binary.AppendVarint(b, ev.Time.UnixNano())
		b = frame.AppendString(b, ev.ContentType)
		b = binary.AppendUvarint(b, uint64(len(ev.Extensions)))
		for k, v := range ev.Extensions {
			b = frame.AppendString(b, k)
			b = frame.AppendString(b, v)
		}
		b = binary.AppendUvarint(b, uint64(len(ev.Data)))
		return append(b, ev.Data...)
	})
}

// readRecord decodes the record at the start of b and returns it with its
// size. n == 0 and a nil error mean b holds only the beginning of a record;
// errCorrupt means the bytes can never become one.
func readRecord(b []byte) (ev *Event, n int, err error) {
	payload, n, err := frame.Next(b, maxRecord)
	if err != nil || n == 0 {
		return nil, 0, err
	}
	if ev, err = decodeEvent(payload); err != nil {
		return nil, 0, err
	}
	return ev, n, nil
}

// decodeEvent reads a record's payload; every length is checked against
// what is left.
func decodeEvent(p []byte) (*Event, error) {
	d := frame.NewDecoder(p)
	if v := d.Byte(); v != recordVersion {
		return nil, errCorrupt
	}
	ev := &Event{}
	ev.ID = d.String()
	ev.Type = d.String()
	ev.Source = d.String()
	ns := d.Varint()
	ev.Time = time.Unix(0, ns).UTC()
	ev.ContentType = d.String()
	// Each extension takes at least two bytes (two empty strings).
	next := d.Uvarint()
	if next > uint64(d.Len())/2 {
		return nil, errCorrupt
	}
	if next > 0 {
		ev.Extensions = make(map[string]string, next)
		for range next {
			k := d.String()
			ev.Extensions[k] = d.String()
		}
	}
	if data := d.Bytes(); len(data) > 0 {
		ev.Data = append([]byte(nil), data...)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return ev, nil
}
