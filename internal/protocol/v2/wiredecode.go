package v2

import (
	"errors"
	"hash/maphash"
	"math"
	"sync/atomic"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/protocol"
)

// This file decodes ModelInferRequest from the protobuf wire format by hand
// (issue 15: proto.Unmarshal's reflection-driven decoder was about 5 % of a
// batch-1 gRPC call's CPU). It accepts exactly what proto.Unmarshal accepts
// and fills the generated message with the same fields (FuzzInferRequestWire
// checks both), with two differences of cost, not of result:
//
//   - the first input tensor, its contents and its shape share the
//     request's allocation, and short strings (model and input names,
//     datatypes, parameter keys) are interned;
//   - tensor contents, raw contents and the messages of the request are
//     charged to the request's budget (protocol.Limits) before they are
//     allocated, so a hostile message cannot make the decoder allocate
//     more than the budget: each element at the size it takes decoded
//     (INT8 in int_contents takes 4 bytes here, 1 after FromProtoWithin
//     narrows it), each BYTES element its length plus 24, each raw
//     content its length, each message msgCost. A request over the budget
//     stops decoding with protocol.ErrTooLarge.

var (
	errWire = errors.New("proto: cannot parse invalid wire-format data")
	errUTF8 = errors.New("proto: string field contains invalid UTF-8")
)

// msgCost is what each decoded message (input, requested output, parameter)
// is charged: a wire encoding of two bytes would otherwise decode into a
// hundred bytes of Go structures.
const msgCost = 128

// requestBlock is one allocation for a request with one input, the common
// case: the message, its first input, that input's contents and shape.
type requestBlock struct {
	wrap  decodedRequest
	req   pb.ModelInferRequest
	in    pb.ModelInferRequest_InferInputTensor
	c     pb.InferTensorContents
	ins   [1]*pb.ModelInferRequest_InferInputTensor
	shape [4]int64
}

// decodedRequest is what Ferry's ModelInfer handler decodes into: the
// request (embedded, so grpc's standard proto codec can fill it too) and
// the budget error that stopped the hand-written decoder, which the handler
// answers after the interceptors have seen the call, as a request refused
// by FromProtoWithin is answered.
type decodedRequest struct {
	*pb.ModelInferRequest
	err error
	blk *requestBlock // nil once the block's input is taken
}

func newDecodedRequest() *decodedRequest {
	blk := &requestBlock{}
	blk.wrap.ModelInferRequest = &blk.req
	blk.wrap.blk = blk
	return &blk.wrap
}

// reqDecoder decodes one request.
type reqDecoder struct {
	b   reqBudget
	blk *requestBlock
	err error // the budget error, once charged over
}

// charge takes elems elements and size bytes from the budget, or records
// the budget's error and returns false.
func (d *reqDecoder) charge(elems, size int64) bool {
	if d.err != nil {
		return false
	}
	if d.b.fits(elems, size) {
		d.b.charge(elems, size)
		return true
	}
	d.err = d.b.take("gRPC request", elems, size)
	return false
}

// errBudget is returned up the decoder's stack once the budget is spent.
var errBudget = errors.New("over budget")

// unmarshalRequest decodes b into m (which must be empty) under lim (with
// its defaults filled) and, if blk is not nil, into blk's request, of which
// m must be the one. A message over the budget gives an error wrapping
// protocol.ErrTooLarge; a malformed one an error like proto.Unmarshal's.
func unmarshalRequest(b []byte, m *pb.ModelInferRequest, lim protocol.Limits, blk *requestBlock) error {
	d := &reqDecoder{b: reqBudget{lim: lim}, blk: blk}
	err := d.request(b, m)
	if err == errBudget {
		return d.err
	}
	return err
}

// consumeTag reads a field's tag as proto.Unmarshal does: field numbers
// outside [1, 2^29-1] are malformed.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, -1
	}
	num := v >> 3
	if num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) {
		return 0, 0, -1
	}
	return protowire.Number(num), protowire.Type(v & 7), n
}

// unknown skips the value of a field the decoder does not know (or of a
// known one in another wire type, which proto.Unmarshal treats alike) and
// keeps it in m's unknown fields, as proto.Unmarshal does, with the tag
// re-encoded minimally. m may be nil (map entries drop theirs).
func unknown(b []byte, num protowire.Number, typ protowire.Type, m protoreflect.ProtoMessage) (int, error) {
	n := protowire.ConsumeFieldValue(num, typ, b)
	if n < 0 {
		return 0, errWire
	}
	if m != nil {
		r := m.ProtoReflect()
		u := protowire.AppendTag(r.GetUnknown(), num, typ)
		r.SetUnknown(append(u, b[:n]...))
	}
	return n, nil
}

// consumeString reads a length-delimited string field, which proto3 wants
// in UTF-8.
func consumeString(b []byte, intern bool) (string, int, error) {
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return "", 0, errWire
	}
	if !utf8.Valid(v) {
		return "", 0, errUTF8
	}
	if intern {
		return internString(v), n, nil
	}
	return string(v), n, nil
}

func (d *reqDecoder) request(b []byte, m *pb.ModelInferRequest) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		var err error
		switch {
		case num == 1 && typ == protowire.BytesType:
			m.ModelName, n, err = consumeString(b, true)
		case num == 2 && typ == protowire.BytesType:
			m.ModelVersion, n, err = consumeString(b, true)
		case num == 3 && typ == protowire.BytesType:
			m.Id, n, err = consumeString(b, false)
		case num == 4 && typ == protowire.BytesType:
			if m.Parameters == nil {
				m.Parameters = map[string]*pb.InferParameter{}
			}
			n, err = d.paramEntry(b, m.Parameters)
		case num == 5 && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n < 0 {
				return errWire
			}
			if !d.charge(0, msgCost) {
				return errBudget
			}
			var in *pb.ModelInferRequest_InferInputTensor
			if d.blk != nil && m.Inputs == nil && m == &d.blk.req {
				in = &d.blk.in
				m.Inputs = d.blk.ins[:1:1]
				m.Inputs[0] = in
			} else {
				in = &pb.ModelInferRequest_InferInputTensor{}
				m.Inputs = append(m.Inputs, in)
			}
			err = d.input(v, in)
		case num == 6 && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n < 0 {
				return errWire
			}
			if !d.charge(0, msgCost) {
				return errBudget
			}
			o := &pb.ModelInferRequest_InferRequestedOutputTensor{}
			m.Outputs = append(m.Outputs, o)
			err = d.output(v, o)
		case num == 7 && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n < 0 {
				return errWire
			}
			if !d.charge(0, int64(len(v))+bytesHeader) {
				return errBudget
			}
			m.RawInputContents = append(reserve(d, m.RawInputContents, 1, b, num, typ, typ, bytesHeader), append(make([]byte, 0, len(v)), v...))
		default:
			n, err = unknown(b, num, typ, m)
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (d *reqDecoder) input(b []byte, m *pb.ModelInferRequest_InferInputTensor) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		var err error
		switch {
		case num == 1 && typ == protowire.BytesType:
			m.Name, n, err = consumeString(b, true)
		case num == 2 && typ == protowire.BytesType:
			m.Datatype, n, err = consumeString(b, true)
		case num == 3:
			var block []int64
			if d.blk != nil && m == &d.blk.in && m.Shape == nil {
				block = d.blk.shape[:0]
			}
			n, err = d.int64s(b, num, typ, &m.Shape, block, m, 0)
		case num == 4 && typ == protowire.BytesType:
			if m.Parameters == nil {
				m.Parameters = map[string]*pb.InferParameter{}
			}
			n, err = d.paramEntry(b, m.Parameters)
		case num == 5 && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n < 0 {
				return errWire
			}
			if m.Contents == nil {
				if d.blk != nil && m == &d.blk.in {
					m.Contents = &d.blk.c
				} else {
					m.Contents = &pb.InferTensorContents{}
				}
			}
			err = d.contents(v, m.Contents)
		default:
			n, err = unknown(b, num, typ, m)
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (d *reqDecoder) output(b []byte, m *pb.ModelInferRequest_InferRequestedOutputTensor) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		var err error
		switch {
		case num == 1 && typ == protowire.BytesType:
			m.Name, n, err = consumeString(b, true)
		case num == 2 && typ == protowire.BytesType:
			if m.Parameters == nil {
				m.Parameters = map[string]*pb.InferParameter{}
			}
			n, err = d.paramEntry(b, m.Parameters)
		default:
			n, err = unknown(b, num, typ, m)
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// paramEntry decodes one map<string, InferParameter> entry as proto does:
// a missing key is "", a missing value an empty parameter, repeated value
// fields merge, a repeated key replaces the earlier entry, and other fields
// are dropped.
func (d *reqDecoder) paramEntry(b []byte, into map[string]*pb.InferParameter) (int, error) {
	entry, total := protowire.ConsumeBytes(b)
	if total < 0 {
		return 0, errWire
	}
	if !d.charge(0, msgCost) {
		return 0, errBudget
	}
	key := ""
	val := &pb.InferParameter{}
	b = entry
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return 0, errWire
		}
		b = b[n:]
		var err error
		switch {
		case num == 1 && typ == protowire.BytesType:
			key, n, err = consumeString(b, true)
		case num == 2 && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n < 0 {
				return 0, errWire
			}
			err = param(v, val)
		default:
			n, err = unknown(b, num, typ, nil)
		}
		if err != nil {
			return 0, err
		}
		b = b[n:]
	}
	into[key] = val
	return total, nil
}

// param decodes (merges) an InferParameter: the last oneof field wins.
func param(b []byte, m *pb.InferParameter) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		var err error
		switch {
		case num == 1 && typ == protowire.VarintType:
			var v uint64
			if v, n = protowire.ConsumeVarint(b); n < 0 {
				return errWire
			}
			m.ParameterChoice = &pb.InferParameter_BoolParam{BoolParam: v != 0}
		case num == 2 && typ == protowire.VarintType:
			var v uint64
			if v, n = protowire.ConsumeVarint(b); n < 0 {
				return errWire
			}
			m.ParameterChoice = &pb.InferParameter_Int64Param{Int64Param: int64(v)}
		case num == 3 && typ == protowire.BytesType:
			var s string
			if s, n, err = consumeString(b, false); err == nil {
				m.ParameterChoice = &pb.InferParameter_StringParam{StringParam: s}
			}
		case num == 4 && typ == protowire.Fixed64Type:
			var v uint64
			if v, n = protowire.ConsumeFixed64(b); n < 0 {
				return errWire
			}
			m.ParameterChoice = &pb.InferParameter_DoubleParam{DoubleParam: math.Float64frombits(v)}
		case num == 5 && typ == protowire.VarintType:
			var v uint64
			if v, n = protowire.ConsumeVarint(b); n < 0 {
				return errWire
			}
			m.ParameterChoice = &pb.InferParameter_Uint64Param{Uint64Param: v}
		default:
			n, err = unknown(b, num, typ, m)
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// contents decodes (merges) InferTensorContents: repeated fields append,
// packed or not.
func (d *reqDecoder) contents(b []byte, m *pb.InferTensorContents) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		var err error
		switch {
		case num == 1 && (typ == protowire.VarintType || typ == protowire.BytesType):
			n, err = varints(d, b, num, typ, &m.BoolContents, nil, 1, 1, func(v uint64) bool { return v != 0 })
		case num == 2 && (typ == protowire.VarintType || typ == protowire.BytesType):
			n, err = varints(d, b, num, typ, &m.IntContents, nil, 1, 4, func(v uint64) int32 { return int32(v) })
		case num == 3:
			n, err = d.int64s(b, num, typ, &m.Int64Contents, nil, m, 1)
		case num == 4 && (typ == protowire.VarintType || typ == protowire.BytesType):
			n, err = varints(d, b, num, typ, &m.UintContents, nil, 1, 4, func(v uint64) uint32 { return uint32(v) })
		case num == 5 && (typ == protowire.VarintType || typ == protowire.BytesType):
			n, err = varints(d, b, num, typ, &m.Uint64Contents, nil, 1, 8, func(v uint64) uint64 { return v })
		case num == 6 && (typ == protowire.Fixed32Type || typ == protowire.BytesType):
			n, err = d.fixed32s(b, typ, &m.Fp32Contents)
		case num == 7 && (typ == protowire.Fixed64Type || typ == protowire.BytesType):
			n, err = d.fixed64s(b, typ, &m.Fp64Contents)
		case num == 8 && typ == protowire.BytesType:
			var v []byte
			if v, n = protowire.ConsumeBytes(b); n < 0 {
				return errWire
			}
			if !d.charge(1, int64(len(v))+bytesHeader) {
				return errBudget
			}
			m.BytesContents = append(reserve(d, m.BytesContents, 1, b, num, typ, typ, bytesHeader), append(make([]byte, 0, len(v)), v...))
		default:
			n, err = unknown(b, num, typ, m)
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// int64s decodes a repeated int64 field (shape, int64_contents); block, if
// not nil, is where a first packed run that fits goes. Each value is
// charged 8 bytes and elems elements (shapes are not tensor elements).
// Other wire types are unknown fields of m.
func (d *reqDecoder) int64s(b []byte, num protowire.Number, typ protowire.Type, into *[]int64, block []int64, m protoreflect.ProtoMessage, elems int64) (int, error) {
	if typ != protowire.VarintType && typ != protowire.BytesType {
		return unknown(b, num, typ, m)
	}
	return varints(d, b, num, typ, into, block, elems, 8, func(v uint64) int64 { return int64(v) })
}

// varints decodes one varint, or a packed run of them, appending to into;
// block, if not nil, takes a first run that fits. Each value is charged
// elems elements and cost bytes, a packed run before it is allocated.
func varints[T any](d *reqDecoder, b []byte, num protowire.Number, typ protowire.Type, into *[]T, block []T, elems, cost int64, conv func(uint64) T) (int, error) {
	if typ == protowire.VarintType {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, errWire
		}
		if !d.charge(elems, cost) {
			return 0, errBudget
		}
		*into = append(reserve(d, *into, 1, b, num, typ, typ, cost), conv(v))
		return n, nil
	}
	run, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, errWire
	}
	count := 0
	for _, c := range run {
		if c < 0x80 {
			count++
		}
	}
	if count == 0 {
		if len(run) > 0 {
			return 0, errWire
		}
		return n, nil
	}
	if !d.charge(elems*int64(count), cost*int64(count)) {
		return 0, errBudget
	}
	s := *into
	if s == nil && block != nil && count <= cap(block) {
		s = block
	} else {
		s = reserve(d, s, count, b, num, typ, protowire.VarintType, cost)
	}
	for len(run) > 0 {
		v, k := protowire.ConsumeVarint(run)
		if k < 0 {
			return 0, errWire
		}
		s = append(s, conv(v))
		run = run[k:]
	}
	*into = s
	return n, nil
}

// reserve returns s with room for need more values (already charged), or
// if it has not, with room for all the field's values still ahead in its
// message, packed runs and single values alike (b starts at the current
// field's value, of wire type cur; elem is the type of a single value), as
// many as the budget still allows at cost bytes each. A field split into
// many runs or single values is then allocated once or twice per message:
// growing it by appending would allocate several times what the budget
// charges, and growing it run by run quadratically.
func reserve[T any](d *reqDecoder, s []T, need int, b []byte, num protowire.Number, cur, elem protowire.Type, cost int64) []T {
	if cap(s)-len(s) >= need {
		return s
	}
	k := min(int64(countAhead(b, num, cur, elem)), int64(need)+d.b.room(cost))
	return grow(s, int(max(k, int64(need))))
}

// countAhead counts the values of field num in b, a message's rest from
// the value (of wire type cur) of one of its occurrences. It stops at
// malformed input, which the decoder refuses when it gets there.
func countAhead(b []byte, num protowire.Number, cur, elem protowire.Type) int {
	count := 0
	fnum, typ := num, cur
	for {
		n := protowire.ConsumeFieldValue(fnum, typ, b)
		if n < 0 {
			return count
		}
		if fnum == num {
			count += valuesIn(b[:n], typ, elem)
		}
		if b = b[n:]; len(b) == 0 {
			return count
		}
		if fnum, typ, n = consumeTag(b); n < 0 {
			return count
		}
		b = b[n:]
	}
}

// valuesIn is the number of values of type elem in a field's value v of
// wire type typ: one, or a packed run's count, or none (another type is an
// unknown field).
func valuesIn(v []byte, typ, elem protowire.Type) int {
	switch {
	case typ == elem:
		return 1
	case typ != protowire.BytesType:
		return 0
	}
	run, _ := protowire.ConsumeBytes(v)
	switch elem {
	case protowire.Fixed32Type:
		return len(run) / 4
	case protowire.Fixed64Type:
		return len(run) / 8
	}
	n := 0
	for _, c := range run {
		if c < 0x80 {
			n++
		}
	}
	return n
}

// grow returns s with room for n more elements.
func grow[T any](s []T, n int) []T {
	if cap(s)-len(s) >= n {
		return s
	}
	out := make([]T, len(s), len(s)+n)
	copy(out, s)
	return out
}

func (d *reqDecoder) fixed32s(b []byte, typ protowire.Type, into *[]float32) (int, error) {
	if typ == protowire.Fixed32Type {
		v, n := protowire.ConsumeFixed32(b)
		if n < 0 {
			return 0, errWire
		}
		if !d.charge(1, 4) {
			return 0, errBudget
		}
		*into = append(reserve(d, *into, 1, b, 6, typ, typ, 4), math.Float32frombits(v))
		return n, nil
	}
	run, n := protowire.ConsumeBytes(b)
	if n < 0 || len(run)%4 != 0 {
		return 0, errWire
	}
	count := len(run) / 4
	if count == 0 {
		return n, nil
	}
	if !d.charge(int64(count), int64(len(run))) {
		return 0, errBudget
	}
	s := reserve(d, *into, count, b, 6, typ, protowire.Fixed32Type, 4)
	for i := 0; i < len(run); i += 4 {
		s = append(s, math.Float32frombits(uint32(run[i])|uint32(run[i+1])<<8|uint32(run[i+2])<<16|uint32(run[i+3])<<24))
	}
	*into = s
	return n, nil
}

func (d *reqDecoder) fixed64s(b []byte, typ protowire.Type, into *[]float64) (int, error) {
	if typ == protowire.Fixed64Type {
		v, n := protowire.ConsumeFixed64(b)
		if n < 0 {
			return 0, errWire
		}
		if !d.charge(1, 8) {
			return 0, errBudget
		}
		*into = append(reserve(d, *into, 1, b, 7, typ, typ, 8), math.Float64frombits(v))
		return n, nil
	}
	run, n := protowire.ConsumeBytes(b)
	if n < 0 || len(run)%8 != 0 {
		return 0, errWire
	}
	count := len(run) / 8
	if count == 0 {
		return n, nil
	}
	if !d.charge(int64(count), int64(len(run))) {
		return 0, errBudget
	}
	s := reserve(d, *into, count, b, 7, typ, protowire.Fixed64Type, 8)
	for i := 0; i < len(run); i += 8 {
		v, _ := protowire.ConsumeFixed64(run[i:])
		s = append(s, math.Float64frombits(v))
	}
	*into = s
	return n, nil
}

// internTable holds recently decoded short strings (names, datatypes,
// parameter keys), so that a request that names what the last ones named
// allocates none. It is bounded (internBuckets × 2 strings of at most
// internMaxLen bytes) and lossy: a third string in a full bucket replaces
// one of the two.
var (
	internTable [internBuckets][2]atomic.Pointer[string]
	internSeed  = maphash.MakeSeed()
)

const (
	internBuckets = 128
	internMaxLen  = 48
)

func internString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > internMaxLen {
		return string(b)
	}
	h := maphash.Bytes(internSeed, b)
	bucket := &internTable[h%internBuckets]
	for i := range bucket {
		if p := bucket[i].Load(); p != nil && *p == string(b) {
			return *p
		}
	}
	s := string(b)
	way := &bucket[(h>>32)&1]
	if bucket[0].Load() == nil {
		way = &bucket[0]
	} else if bucket[1].Load() == nil {
		way = &bucket[1]
	}
	way.Store(&s)
	return s
}
