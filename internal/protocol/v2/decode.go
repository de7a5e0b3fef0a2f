package v2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/tensor"
)

// decoderPool reuses decoders (and their internal buffers) across requests,
// each with the reader it decodes from, so that neither is allocated per
// request.
var decoderPool = sync.Pool{New: func() any {
	p := &pooledDecoder{}
	p.dec = jsontext.NewDecoder(&p.r)
	return p
}}

type pooledDecoder struct {
	dec *jsontext.Decoder
	r   bytes.Reader
}

// maxRank bounds tensor shapes; no real model has more dimensions.
const maxRank = 16

// DecodeRequest decodes a V2 inference request body under the default
// protocol.Limits. jsonLen is the value of the Inference-Header-Content-Length
// header, or -1 when the whole body is JSON; the bytes after the JSON part
// hold the binary tensor data of the inputs whose binary_data_size parameter
// is set, in input order.
func DecodeRequest(body []byte, jsonLen int) (*InferRequest, error) {
	return DecodeRequestWithin(body, jsonLen, protocol.Limits{})
}

// DecodeRequestWithin is DecodeRequest under the limits lim (zero fields take
// the defaults). A request over them fails with protocol.ErrTooLarge before
// the tensor that crosses them is allocated.
func DecodeRequestWithin(body []byte, jsonLen int, lim protocol.Limits) (*InferRequest, error) {
	b := &reqBudget{lim: lim.WithDefaults()}
	bin := []byte(nil)
	if jsonLen >= 0 {
		if jsonLen > len(body) {
			return nil, fmt.Errorf("%w: %s is %d but the body has only %d bytes", protocol.ErrBadRequest, HeaderInferenceLength, jsonLen, len(body))
		}
		body, bin = body[:jsonLen], body[jsonLen:]
	}
	req, sizes, err := decodeJSON(body, b)
	if err != nil {
		return nil, err
	}
	if err := attachBinary(req, sizes, bin, jsonLen >= 0, b); err != nil {
		return nil, err
	}
	return req, nil
}

// pendingInput is an input whose data arrived before its datatype and shape.
type pendingInput struct {
	raw   jsontext.Value
	shape bool
	dtype bool
}

func decodeJSON(body []byte, b *reqBudget) (*InferRequest, []int64, error) {
	if scanRequests {
		if req, sizes, ok := scanRequest(body, b); ok {
			return req, sizes, nil
		}
	}
	pd := decoderPool.Get().(*pooledDecoder)
	pd.r.Reset(body)
	pd.dec.Reset(&pd.r)
	defer func() {
		pd.r.Reset(nil)
		pd.dec.Reset(&pd.r)
		decoderPool.Put(pd)
	}()
	dec := pd.dec
	req := &InferRequest{}
	var sizes []int64 // binary_data_size per input, -1 when absent
	if err := expectDelim(dec, '{', "request"); err != nil {
		return nil, nil, err
	}
	for dec.PeekKind() != '}' {
		key, err := readKey(dec)
		if err != nil {
			return nil, nil, err
		}
		switch key {
		case "id":
			s, err := readString(dec, "id")
			if err != nil {
				return nil, nil, err
			}
			req.ID = s
		case "parameters":
			p, err := readParameters(dec, "parameters")
			if err != nil {
				return nil, nil, err
			}
			req.Parameters = p
		case "inputs":
			if err := expectDelim(dec, '[', "inputs"); err != nil {
				return nil, nil, err
			}
			for dec.PeekKind() != ']' {
				t, size, err := decodeInput(dec, len(req.Inputs), len(body), b)
				if err != nil {
					return nil, nil, err
				}
				req.Inputs = append(req.Inputs, t)
				sizes = append(sizes, size)
			}
			if _, err := dec.ReadToken(); err != nil {
				return nil, nil, syntaxErr(err)
			}
		case "outputs":
			outs, err := decodeOutputs(dec)
			if err != nil {
				return nil, nil, err
			}
			req.Outputs = outs
		default:
			if err := dec.SkipValue(); err != nil {
				return nil, nil, syntaxErr(err)
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, nil, syntaxErr(err)
	}
	// Only whitespace may follow: another value, or bytes that are not
	// JSON at all, are refused alike.
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: unexpected data after the JSON request object", protocol.ErrBadRequest)
	}
	if len(req.Inputs) == 0 {
		return nil, nil, fmt.Errorf("%w: field \"inputs\" is required and must hold at least one tensor", protocol.ErrBadRequest)
	}
	return req, sizes, nil
}

// decodeInput reads one tensor; b, when not nil, is the request's budget.
func decodeInput(dec *jsontext.Decoder, idx, bodyLen int, b *reqBudget) (*tensor.Tensor, int64, error) {
	where := fmt.Sprintf("inputs[%d]", idx)
	if err := expectDelim(dec, '{', where); err != nil {
		return nil, 0, err
	}
	t := &tensor.Tensor{}
	var pend pendingInput
	haveData, haveShape := false, false
	for dec.PeekKind() != '}' {
		key, err := readKey(dec)
		if err != nil {
			return nil, 0, err
		}
		switch key {
		case "name":
			if t.Name, err = readString(dec, where+".name"); err != nil {
				return nil, 0, err
			}
			where = fmt.Sprintf("input %q", t.Name)
		case "datatype":
			s, err := readString(dec, where+".datatype")
			if err != nil {
				return nil, 0, err
			}
			if t.Datatype, err = tensor.ParseDataType(s); err != nil {
				return nil, 0, fmt.Errorf("%w: %s: %w", protocol.ErrBadRequest, where, err)
			}
		case "shape":
			if t.Shape, err = readShape(dec, where); err != nil {
				return nil, 0, err
			}
			haveShape = true
		case "parameters":
			if t.Parameters, err = readParameters(dec, where+".parameters"); err != nil {
				return nil, 0, err
			}
		case "data":
			haveData = true
			if t.Datatype == tensor.Invalid || !haveShape {
				v, err := dec.ReadValue()
				if err != nil {
					return nil, 0, syntaxErr(err)
				}
				pend.raw = v.Clone()
				continue
			}
			if t.Data, err = readData(dec, t.Datatype, t.Shape, bodyLen, where, b); err != nil {
				return nil, 0, err
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return nil, 0, syntaxErr(err)
			}
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, 0, syntaxErr(err)
	}
	switch {
	case t.Name == "":
		return nil, 0, fmt.Errorf("%w: %s: field \"name\" is required", protocol.ErrBadRequest, where)
	case t.Datatype == tensor.Invalid:
		return nil, 0, fmt.Errorf("%w: %s: field \"datatype\" is required (e.g. \"FP32\")", protocol.ErrBadRequest, where)
	case !haveShape:
		return nil, 0, fmt.Errorf("%w: %s: field \"shape\" is required (e.g. [1, 4])", protocol.ErrBadRequest, where)
	}
	size := int64(-1)
	if v, ok := t.Parameters[paramBinarySize]; ok {
		n, ok := asInt(v)
		if !ok || n < 0 {
			return nil, 0, fmt.Errorf("%w: %s: parameter %s must be a non-negative integer", protocol.ErrBadRequest, where, paramBinarySize)
		}
		if haveData {
			return nil, 0, fmt.Errorf("%w: %s: has both \"data\" and parameter %s; send one", protocol.ErrBadRequest, where, paramBinarySize)
		}
		return t, n, nil
	}
	if !haveData {
		return nil, 0, fmt.Errorf("%w: %s: field \"data\" is required (or parameter %s with binary data)", protocol.ErrBadRequest, where, paramBinarySize)
	}
	if pend.raw != nil {
		d := jsontext.NewDecoder(bytes.NewReader(pend.raw))
		var err error
		if t.Data, err = readData(d, t.Datatype, t.Shape, bodyLen, where, b); err != nil {
			return nil, 0, err
		}
	}
	if err := t.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", protocol.ErrBadRequest, err)
	}
	return t, size, nil
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		if n == math.Trunc(n) && n >= 0 && n < 1<<53 {
			return int64(n), true
		}
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case int64:
		return n, true
	}
	return 0, false
}

func decodeOutputs(dec *jsontext.Decoder) ([]RequestedOutput, error) {
	if err := expectDelim(dec, '[', "outputs"); err != nil {
		return nil, err
	}
	var outs []RequestedOutput
	for dec.PeekKind() != ']' {
		where := fmt.Sprintf("outputs[%d]", len(outs))
		if err := expectDelim(dec, '{', where); err != nil {
			return nil, err
		}
		var o RequestedOutput
		for dec.PeekKind() != '}' {
			key, err := readKey(dec)
			if err != nil {
				return nil, err
			}
			switch key {
			case "name":
				if o.Name, err = readString(dec, where+".name"); err != nil {
					return nil, err
				}
			case "parameters":
				if o.Parameters, err = readParameters(dec, where+".parameters"); err != nil {
					return nil, err
				}
			default:
				if err := dec.SkipValue(); err != nil {
					return nil, syntaxErr(err)
				}
			}
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, syntaxErr(err)
		}
		if o.Name == "" {
			return nil, fmt.Errorf("%w: %s: field \"name\" is required", protocol.ErrBadRequest, where)
		}
		outs = append(outs, o)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, syntaxErr(err)
	}
	return outs, nil
}

func attachBinary(req *InferRequest, sizes []int64, bin []byte, binaryMode bool, b *reqBudget) error {
	for i, t := range req.Inputs {
		if sizes[i] < 0 {
			continue
		}
		if !binaryMode {
			return fmt.Errorf("%w: input %q sets %s but the request has no %s header", protocol.ErrBadRequest, t.Name, paramBinarySize, HeaderInferenceLength)
		}
		if sizes[i] > int64(len(bin)) {
			return fmt.Errorf("%w: input %q: %s is %d but only %d bytes of binary data remain (truncated body?)", protocol.ErrBadRequest, t.Name, paramBinarySize, sizes[i], len(bin))
		}
		if n := tensor.NumElements(t.Shape); n >= 0 {
			if err := b.take(fmt.Sprintf("input %q", t.Name), n, n*elemCost(t.Datatype)); err != nil {
				return err
			}
		}
		dec, err := tensor.FromBinary(t.Name, t.Datatype, t.Shape, bin[:sizes[i]])
		if err != nil {
			return fmt.Errorf("%w: %w", protocol.ErrBadRequest, err)
		}
		t.Data = dec.Data
		bin = bin[sizes[i]:]
	}
	if len(bin) != 0 {
		return fmt.Errorf("%w: %d bytes of binary data left over after the inputs' %s", protocol.ErrBadRequest, len(bin), paramBinarySize)
	}
	return nil
}

func readShape(dec *jsontext.Decoder, where string) ([]int64, error) {
	if err := expectDelim(dec, '[', where+".shape"); err != nil {
		return nil, err
	}
	shape := make([]int64, 0, 4)
	for dec.PeekKind() != ']' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, syntaxErr(err)
		}
		if tok.Kind() != '0' {
			return nil, fmt.Errorf("%w: %s.shape must be a list of non-negative integers", protocol.ErrBadRequest, where)
		}
		d, err := tok.Int()
		if err != nil || d < 0 {
			return nil, fmt.Errorf("%w: %s.shape must be a list of non-negative integers, got %s", protocol.ErrBadRequest, where, tok.String())
		}
		if len(shape) == maxRank {
			return nil, fmt.Errorf("%w: %s.shape has more than %d dimensions", protocol.ErrBadRequest, where, maxRank)
		}
		shape = append(shape, d)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, syntaxErr(err)
	}
	if tensor.NumElements(shape) < 0 {
		return nil, fmt.Errorf("%w: %s.shape %v is too large", protocol.ErrBadRequest, where, shape)
	}
	return shape, nil
}

// readParameters reads a parameters object: string keys to string, number
// or bool values. Numbers that are integers become int64, others float64.
func readParameters(dec *jsontext.Decoder, where string) (map[string]any, error) {
	if err := expectDelim(dec, '{', where); err != nil {
		return nil, err
	}
	out := map[string]any{}
	for dec.PeekKind() != '}' {
		k, err := readKey(dec)
		if err != nil {
			return nil, err
		}
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, syntaxErr(err)
		}
		switch tok.Kind() {
		case '"':
			out[k] = tok.String()
		case 't', 'f':
			out[k] = tok.Bool()
		case '0':
			if i, err := tok.Int(); err == nil {
				out[k] = i
			} else if f, err := tok.Float(); err == nil {
				out[k] = f
			} else {
				return nil, fmt.Errorf("%w: %s.%s: number out of range", protocol.ErrBadRequest, where, k)
			}
		default:
			return nil, fmt.Errorf("%w: %s.%s must be a string, number or bool", protocol.ErrBadRequest, where, k)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, syntaxErr(err)
	}
	return out, nil
}

func readKey(dec *jsontext.Decoder) (string, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return "", syntaxErr(err)
	}
	return tok.String(), nil
}

func readString(dec *jsontext.Decoder, where string) (string, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return "", syntaxErr(err)
	}
	if tok.Kind() != '"' {
		return "", fmt.Errorf("%w: %s must be a string", protocol.ErrBadRequest, where)
	}
	return tok.String(), nil
}

func expectDelim(dec *jsontext.Decoder, k jsontext.Kind, where string) error {
	if got := dec.PeekKind(); got != k {
		if got == 0 {
			_, err := dec.ReadToken()
			return syntaxErr(err)
		}
		want := map[jsontext.Kind]string{'{': "an object", '[': "a list"}[k]
		return fmt.Errorf("%w: %s must be %s", protocol.ErrBadRequest, where, want)
	}
	_, err := dec.ReadToken()
	return syntaxErr(err)
}

func syntaxErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, protocol.ErrBadRequest) {
		return err
	}
	return fmt.Errorf("%w: malformed JSON: %w", protocol.ErrBadRequest, err)
}

// readData reads a tensor's "data" value, nested or flat, into a typed
// slice, charging b (when not nil) for what it decodes.
func readData(dec *jsontext.Decoder, dt tensor.DataType, shape []int64, bodyLen int, where string, b *reqBudget) (any, error) {
	// A lying shape must not make us allocate more than the body could hold:
	// every JSON element takes at least two bytes ("0,").
	n := tensor.NumElements(shape)
	cost := elemCost(dt)
	if room := b.room(cost); n > room {
		// The data must match the shape, so it could never fit.
		return nil, b.take(where, n, n*cost)
	}
	hint := int(min(n, int64(bodyLen/2+1)))
	el := elemReader{dec: dec, b: b, where: where, dt: dt, hint: hint, want: n}
	switch dt {
	case tensor.Bool:
		return readElems(el, func(tok jsontext.Token) (bool, bool) {
			switch tok.Kind() {
			case 't':
				return true, true
			case 'f':
				return false, true
			}
			return false, false
		})
	case tensor.Uint8:
		return readElems(el, uintParser[uint8](8))
	case tensor.Uint16:
		return readElems(el, uintParser[uint16](16))
	case tensor.Uint32:
		return readElems(el, uintParser[uint32](32))
	case tensor.Uint64:
		return readElems(el, uintParser[uint64](64))
	case tensor.Int8:
		return readElems(el, intParser[int8](8))
	case tensor.Int16:
		return readElems(el, intParser[int16](16))
	case tensor.Int32:
		return readElems(el, intParser[int32](32))
	case tensor.Int64:
		return readElems(el, intParser[int64](64))
	case tensor.FP32:
		return readElems(el, func(tok jsontext.Token) (float32, bool) {
			f, ok := parseFloat(tok)
			return float32(f), ok
		})
	case tensor.FP64:
		return readElems(el, parseFloat)
	case tensor.FP16:
		return readElems(el, func(tok jsontext.Token) (uint16, bool) {
			f, ok := parseFloat(tok)
			return tensor.Float32ToHalf(float32(f)), ok
		})
	case tensor.BF16:
		return readElems(el, func(tok jsontext.Token) (uint16, bool) {
			f, ok := parseFloat(tok)
			return tensor.Float32ToBF16(float32(f)), ok
		})
	case tensor.Bytes:
		var payload int64
		out, err := readElems(el, func(tok jsontext.Token) ([]byte, bool) {
			if tok.Kind() != '"' {
				return nil, false
			}
			s := tok.String()
			payload += int64(len(s))
			return []byte(s), true
		})
		if err != nil {
			return nil, err
		}
		// The payload copies the body's strings, so it is bounded by the
		// body; it is charged once they are read.
		return out, b.take(where, 0, payload)
	}
	return nil, fmt.Errorf("%w: %s: unsupported datatype %s", protocol.ErrBadRequest, where, dt)
}

// elemReader is what readElems needs besides its parser.
type elemReader struct {
	dec   *jsontext.Decoder
	b     *reqBudget
	where string
	dt    tensor.DataType
	hint  int
	want  int64 // the element count the shape declares
}

// readElems walks a JSON value that is a (possibly nested) list, or a
// single scalar, and parses each scalar with parse. It stops with the
// budget's error at the first element over it.
func readElems[T any](el elemReader, parse func(jsontext.Token) (T, bool)) ([]T, error) {
	dec, where, dt := el.dec, el.where, el.dt
	cost := elemCost(dt)
	room := el.b.room(cost)
	out := make([]T, 0, min(int64(el.hint), room))
	depth := 0
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, syntaxErr(err)
		}
		switch tok.Kind() {
		case '[':
			depth++
			if depth > maxRank {
				return nil, fmt.Errorf("%w: %s: data is nested deeper than %d levels", protocol.ErrBadRequest, where, maxRank)
			}
			continue
		case ']':
			depth--
		case '{':
			return nil, fmt.Errorf("%w: %s: data[%d]: expected %s value, got an object", protocol.ErrBadRequest, where, len(out), dt)
		default:
			v, ok := parse(tok)
			if !ok {
				return nil, fmt.Errorf("%w: %s: data[%d]: expected %s value, got %s", protocol.ErrBadRequest, where, len(out), expectedKind(dt), describe(tok))
			}
			if int64(len(out)) == el.want {
				// More data than the shape declares: stop before it grows.
				return nil, fmt.Errorf("%w: %s: data holds more than the %d elements its shape declares", protocol.ErrBadRequest, where, el.want)
			}
			if int64(len(out)) == room {
				n := int64(len(out)) + 1
				return nil, el.b.take(where, n, n*cost)
			}
			out = append(out, v)
		}
		if depth == 0 {
			n := int64(len(out))
			return out, el.b.take(where, n, n*cost)
		}
	}
}

func expectedKind(dt tensor.DataType) string {
	switch {
	case dt == tensor.Bool:
		return "a BOOL (true/false)"
	case dt == tensor.Bytes:
		return "a BYTES (string)"
	case dt.IsFloat():
		return "a " + dt.String() + " (number or null)"
	}
	return "an " + dt.String() + " (integer in range)"
}

func describe(tok jsontext.Token) string {
	switch tok.Kind() {
	case '"':
		return strconv.Quote(tok.String())
	case 'n':
		return "null"
	}
	return tok.String()
}

func parseFloat(tok jsontext.Token) (float64, bool) {
	switch tok.Kind() {
	case '0':
		f, err := tok.Float()
		return f, err == nil
	case 'n':
		return math.NaN(), true // null in FP data means a missing value
	case '"':
		switch tok.String() {
		case "NaN", "nan":
			return math.NaN(), true
		case "Infinity", "inf":
			return math.Inf(1), true
		case "-Infinity", "-inf":
			return math.Inf(-1), true
		}
	}
	return 0, false
}

func intParser[T int8 | int16 | int32 | int64](bits int) func(jsontext.Token) (T, bool) {
	lo, hi := -int64(1)<<(bits-1), int64(1)<<(bits-1)-1
	if bits == 64 {
		lo, hi = math.MinInt64, math.MaxInt64
	}
	return func(tok jsontext.Token) (T, bool) {
		if tok.Kind() != '0' {
			return 0, false
		}
		v, err := tok.Int()
		if err != nil || v < lo || v > hi {
			return 0, false
		}
		return T(v), true
	}
}

func uintParser[T uint8 | uint16 | uint32 | uint64](bits int) func(jsontext.Token) (T, bool) {
	hi := uint64(math.MaxUint64)
	if bits < 64 {
		hi = 1<<bits - 1
	}
	return func(tok jsontext.Token) (T, bool) {
		if tok.Kind() != '0' {
			return 0, false
		}
		v, err := tok.Uint()
		if err != nil || v > hi {
			return 0, false
		}
		return T(v), true
	}
}

// bytesHeader is what a BYTES element costs besides its payload: a slice
// header.
const bytesHeader = 24

// elemCost is the decoded size of one element of dt, without a BYTES
// element's payload.
func elemCost(dt tensor.DataType) int64 {
	if dt == tensor.Bytes {
		return bytesHeader
	}
	return int64(max(dt.Size(), 1))
}

// reqBudget is what one request's decoded inputs may still take. A nil
// *reqBudget is unlimited (responses decoded by the client).
type reqBudget struct {
	lim          protocol.Limits
	elems, bytes int64
}

// room is how many more elements of cost bytes each fit.
func (b *reqBudget) room(cost int64) int64 {
	if b == nil {
		return math.MaxInt64
	}
	n := b.lim.MaxElements - b.elems
	if cost > 0 {
		n = min(n, (b.lim.MaxDecodedBytes-b.bytes)/cost)
	}
	return max(n, 0)
}

// take charges elems elements and size bytes, or fails naming the limit
// and its flag.
func (b *reqBudget) take(where string, elems, size int64) error {
	if b == nil {
		return nil
	}
	if elems > b.lim.MaxElements-b.elems {
		return fmt.Errorf("%w: %s: the request's tensors hold more than %d elements in all (the --max-request-elements limit)", protocol.ErrTooLarge, where, b.lim.MaxElements)
	}
	if size > b.lim.MaxDecodedBytes-b.bytes {
		return fmt.Errorf("%w: %s: the request's tensors decode to more than %d bytes in all (the --max-request-decoded-bytes limit; a BYTES element counts its length plus %d)", protocol.ErrTooLarge, where, b.lim.MaxDecodedBytes, bytesHeader)
	}
	b.charge(elems, size)
	return nil
}

// fits reports whether take would succeed, so that a caller can build its
// error label only when it fails.
func (b *reqBudget) fits(elems, size int64) bool {
	return b == nil || (elems <= b.lim.MaxElements-b.elems && size <= b.lim.MaxDecodedBytes-b.bytes)
}

// charge records what take checked.
func (b *reqBudget) charge(elems, size int64) {
	if b != nil {
		b.elems += elems
		b.bytes += size
	}
}
