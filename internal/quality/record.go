package quality

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/ferryserve/ferry/internal/frame"
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

// Records are framed by internal/frame; maxFrame bounds one read back, so a
// corrupt length cannot make replay allocate without bound.
const maxFrame = 64 << 20

var errTorn = frame.ErrCorrupt

func appendPrediction(b []byte, p *Prediction) []byte {
	b = append(b, recPrediction)
	return appendPredictionBody(b, p)
}

func appendPredictionBody(b []byte, p *Prediction) []byte {
	b = frame.AppendString(b, p.Model)
	b = frame.AppendString(b, p.Revision)
	b = frame.AppendString(b, p.ID)
	b = binary.AppendVarint(b, p.Time)
	b = binary.AppendUvarint(b, uint64(len(p.Rows)))
	for _, r := range p.Rows {
		b = append(b, byte(r.Kind))
		switch r.Kind {
		case KindLabel:
			b = frame.AppendString(b, r.Label)
		case KindValue:
			b = frame.AppendFloat(b, r.Value)
		case KindProbs:
			b = binary.AppendUvarint(b, uint64(len(r.Probs)))
			for _, v := range r.Probs {
				b = frame.AppendFloat(b, v)
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
			b = frame.AppendFloat(b, t.Value)
		} else {
			b = append(b, 0)
			b = frame.AppendString(b, t.Label)
		}
	}
	return b
}

// decodeRecord decodes a payload: its type and the prediction (and, for
// recJoined, the truths).
func decodeRecord(p []byte) (byte, *joined, error) {
	d := frame.NewDecoder(p)
	typ := d.Byte()
	if typ != recPrediction && typ != recJoined {
		return 0, nil, fmt.Errorf("record type %q: %w", typ, errTorn)
	}
	j := &joined{}
	j.Model, j.Revision, j.ID = d.String(), d.String(), d.String()
	j.Time = d.Varint()
	n := d.Count()
	j.Rows = make([]Row, 0, n)
	for range n {
		r := Row{Kind: RowKind(d.Byte())}
		switch r.Kind {
		case KindLabel:
			r.Label = d.String()
		case KindValue:
			r.Value = d.Float()
		case KindProbs:
			k := d.Count()
			r.Probs = make([]float64, k)
			for i := range r.Probs {
				r.Probs[i] = d.Float()
			}
		default:
			d.Fail()
		}
		j.Rows = append(j.Rows, r)
	}
	if typ == recJoined {
		j.Truth = make([]Truth, n)
		for i := range j.Truth {
			if d.Byte() == 1 {
				j.Truth[i] = Truth{Value: d.Float(), Numeric: true}
				j.Truth[i].Label = formatNumber(j.Truth[i].Value)
			} else {
				j.Truth[i] = Truth{Label: d.String()}
			}
		}
	}
	if err := d.Err(); err != nil {
		return 0, nil, err
	}
	return typ, j, nil
}

// formatNumber writes a number as a label: integers without a fraction,
// so that 1, 1.0 and "1" are one class.
func formatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
