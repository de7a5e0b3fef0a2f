package quality

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strconv"
)

// RowKind says what a model answered for one row.
type RowKind uint8

const (
	// KindLabel is a class label (a string, or an integer-valued number).
	KindLabel RowKind = 1
	// KindValue is a regression value.
	KindValue RowKind = 2
	// KindProbs is a vector of class probabilities; the predicted class
	// is the index of the largest.
	KindProbs RowKind = 3
)

// Row is one row of a prediction.
type Row struct {
	Kind  RowKind
	Label string
	Value float64
	Probs []float64
}

// Prediction is what the journal keeps of one answered request.
type Prediction struct {
	Model, Revision, ID string
	// Time is when it was answered (unix nanoseconds in the journal).
	Time int64
	Rows []Row
}

// Truth is the true value of one row: a label or a number (a number is
// also a label: 1 and "1" name the same class).
type Truth struct {
	Label   string
	Value   float64
	Numeric bool
}

// Record types in the journal.
const (
	recPrediction byte = 'P'
	// recJoined is a prediction joined with its truth: self-contained, so
	// that replay rebuilds the windows without the prediction record.
	recJoined byte = 'J'
)

// joined is a recJoined record: the prediction's rows and their truths.
type joined struct {
	Prediction
	Truth []Truth
}

// Frame: uint32 payload length, uint32 CRC-32C of the payload, payload.
const frameHeader = 8

// maxFrame bounds a frame read back, so a corrupt length cannot make
// replay allocate without bound.
const maxFrame = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errTorn = errors.New("torn or corrupt record")

// appendFrame appends a framed payload built by fill to b.
func appendFrame(b []byte, fill func([]byte) []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = fill(b)
	p := b[start+frameHeader:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(p)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(p, castagnoli))
	return b
}

// frameLen reads a frame header: the payload length, or errTorn.
func frameLen(h []byte) (int, error) {
	n := binary.LittleEndian.Uint32(h)
	if n == 0 || n > maxFrame {
		return 0, errTorn
	}
	return int(n), nil
}

func checkFrame(h, p []byte) error {
	if crc32.Checksum(p, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
		return errTorn
	}
	return nil
}

func appendPrediction(b []byte, p *Prediction) []byte {
	b = append(b, recPrediction)
	return appendPredictionBody(b, p)
}

func appendPredictionBody(b []byte, p *Prediction) []byte {
	b = appendString(b, p.Model)
	b = appendString(b, p.Revision)
	b = appendString(b, p.ID)
	b = binary.AppendVarint(b, p.Time)
	b = binary.AppendUvarint(b, uint64(len(p.Rows)))
	for _, r := range p.Rows {
		b = append(b, byte(r.Kind))
		switch r.Kind {
		case KindLabel:
			b = appendString(b, r.Label)
		case KindValue:
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Value))
		case KindProbs:
			b = binary.AppendUvarint(b, uint64(len(r.Probs)))
			for _, v := range r.Probs {
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
			}
		}
	}
	return b
}

func appendJoined(b []byte, j *joined) []byte {
	b = append(b, recJoined)
	b = appendPredictionBody(b, &j.Prediction)
	for _, t := range j.Truth {
		if t.Numeric {
			b = append(b, 1)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(t.Value))
		} else {
			b = append(b, 0)
			b = appendString(b, t.Label)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeRecord decodes a payload: its type and the prediction (and, for
// recJoined, the truths).
func decodeRecord(p []byte) (byte, *joined, error) {
	d := decoder{b: p}
	typ := d.byte()
	if typ != recPrediction && typ != recJoined {
		return 0, nil, fmt.Errorf("record type %q: %w", typ, errTorn)
	}
	j := &joined{}
	j.Model, j.Revision, j.ID = d.string(), d.string(), d.string()
	j.Time = d.varint()
	n := d.count()
	j.Rows = make([]Row, 0, n)
	for range n {
		r := Row{Kind: RowKind(d.byte())}
		switch r.Kind {
		case KindLabel:
			r.Label = d.string()
		case KindValue:
			r.Value = d.float()
		case KindProbs:
			k := d.count()
			r.Probs = make([]float64, k)
			for i := range r.Probs {
				r.Probs[i] = d.float()
			}
		default:
			d.err = errTorn
		}
		j.Rows = append(j.Rows, r)
	}
	if typ == recJoined {
		j.Truth = make([]Truth, n)
		for i := range j.Truth {
			if d.byte() == 1 {
				j.Truth[i] = Truth{Value: d.float(), Numeric: true}
				j.Truth[i].Label = formatNumber(j.Truth[i].Value)
			} else {
				j.Truth[i] = Truth{Label: d.string()}
			}
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return 0, nil, errTorn
	}
	return typ, j, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.err = errTorn
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTorn
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit in what is left.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.b)) {
		d.err = errTorn
		return 0
	}
	return int(v)
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errTorn
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) float() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.err = errTorn
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// formatNumber writes a number as a label: integers without a fraction,
// so that 1, 1.0 and "1" are one class.
func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
