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
	// Output, if set instead of Rows, is the response itself: its rows
	// are read when feedback joins it (journaled as recRaw).
	Output *RawOutput
}

// RawOutput is a predict response journaled as it was answered. Most
// predictions never get feedback, so reading their rows on the predict
// path was wasted work (a third of the middleware's CPU time on a small
// model); Monitor reads them, with the task the prediction was made
// under, when feedback joins, and journals the rows with the truths.
type RawOutput struct {
	V1   bool // a V1 predict response; else V2 infer
	Task Task
	Body []byte
}

// maxRawBytes bounds a response journaled raw: a larger one is read on the
// predict path and journaled as rows, so a record of either kind is at most
// what the response's rows take, plus this.
const maxRawBytes = 16 << 10

// rows reads the response's rows as ParseV1 or ParseV2 do.
func (o *RawOutput) rows() ([]Row, error) {
	if o.V1 {
		return ParseV1(o.Body, o.Task)
	}
	rows, _, _, err := ParseV2(o.Body, o.Task)
	return rows, err
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
	// recRaw is a prediction whose outputs are the response's bytes
	// (RawOutput). Journals that hold one cannot be read by a Ferry
	// older than this record type: it would cut the journal there as torn.
	recRaw byte = 'R'
)

// Flags of a recRaw record.
const rawV1 byte = 1

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
	if o := p.Output; o != nil {
		b = append(b, recRaw)
		b = appendHead(b, p)
		var flags byte
		if o.V1 {
			flags |= rawV1
		}
		b = append(b, flags)
		b = frame.AppendString(b, string(o.Task))
		b = binary.AppendUvarint(b, uint64(len(o.Body)))
		return append(b, o.Body...)
	}
	b = append(b, recPrediction)
	return appendPredictionBody(b, p)
}

// appendHead appends what every prediction record starts with.
func appendHead(b []byte, p *Prediction) []byte {
	b = frame.AppendString(b, p.Model)
	b = frame.AppendString(b, p.Revision)
	b = frame.AppendString(b, p.ID)
	return binary.AppendVarint(b, p.Time)
}

func appendPredictionBody(b []byte, p *Prediction) []byte {
	b = appendHead(b, p)
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
// recJoined, the truths). A recRaw's Output.Body aliases p.
func decodeRecord(p []byte) (byte, *joined, error) {
	d := frame.NewDecoder(p)
	typ := d.Byte()
	if typ != recPrediction && typ != recJoined && typ != recRaw {
		return 0, nil, fmt.Errorf("record type %q: %w", typ, errTorn)
	}
	j := &joined{}
	j.Model, j.Revision, j.ID = d.String(), d.String(), d.String()
	j.Time = d.Varint()
	if typ == recRaw {
		flags := d.Byte()
		if flags&^rawV1 != 0 {
			d.Fail()
		}
		j.Output = &RawOutput{V1: flags&rawV1 != 0, Task: Task(d.String()), Body: d.Bytes()}
		if err := d.Err(); err != nil {
			return 0, nil, err
		}
		return typ, j, nil
	}
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
