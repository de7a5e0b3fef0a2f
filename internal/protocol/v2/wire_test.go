package v2

import (
	"errors"
	"math"
	"testing"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/protocol"
	"github.com/ferryserve/ferry/internal/tensor"
)

// wireRequests are requests in every shape the decoder knows: all content
// types, parameters of every kind, requested outputs, raw contents and
// unknown fields.
func wireRequests() []*pb.ModelInferRequest {
	params := map[string]*pb.InferParameter{
		"b": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: true}},
		"i": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: -7}},
		"s": {ParameterChoice: &pb.InferParameter_StringParam{StringParam: "héllo"}},
		"d": {ParameterChoice: &pb.InferParameter_DoubleParam{DoubleParam: math.Inf(-1)}},
		"u": {ParameterChoice: &pb.InferParameter_Uint64Param{Uint64Param: math.MaxUint64}},
		"":  {},
	}
	withUnknown := &pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{fp32Input("x", 2)}}
	withUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 5))
	withUnknown.Inputs[0].Contents.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 20, protowire.BytesType), "z"))
	return []*pb.ModelInferRequest{
		{ModelName: "bench", Inputs: []*pb.ModelInferRequest_InferInputTensor{fp32Input("input-0", 20)}},
		{ModelName: "m", ModelVersion: "2", Id: "req-1", Parameters: params,
			Inputs: []*pb.ModelInferRequest_InferInputTensor{
				{Name: "b", Datatype: "BOOL", Shape: []int64{3}, Parameters: params, Contents: &pb.InferTensorContents{BoolContents: []bool{true, false, true}}},
				{Name: "i", Datatype: "INT32", Shape: []int64{3}, Contents: &pb.InferTensorContents{IntContents: []int32{-1, 0, math.MaxInt32}}},
				{Name: "l", Datatype: "INT64", Shape: []int64{2}, Contents: &pb.InferTensorContents{Int64Contents: []int64{math.MinInt64, 1}}},
				{Name: "u", Datatype: "UINT32", Shape: []int64{1}, Contents: &pb.InferTensorContents{UintContents: []uint32{math.MaxUint32}}},
				{Name: "v", Datatype: "UINT64", Shape: []int64{1}, Contents: &pb.InferTensorContents{Uint64Contents: []uint64{math.MaxUint64}}},
				{Name: "d", Datatype: "FP64", Shape: []int64{2}, Contents: &pb.InferTensorContents{Fp64Contents: []float64{math.NaN(), -0.0}}},
				{Name: "s", Datatype: "BYTES", Shape: []int64{2}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{{}, []byte("ab")}}},
				{Name: "e", Datatype: "FP32", Shape: []int64{-1, 0}, Contents: &pb.InferTensorContents{}},
			},
			Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "o", Parameters: params}, {}},
		},
		{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "r", Datatype: "FP16", Shape: []int64{1, 2}}},
			RawInputContents: [][]byte{{0, 60, 0, 64}, {}}},
		withUnknown,
	}
}

// handWire are encodings proto.Marshal does not write but proto.Unmarshal
// reads: unpacked repeated fields, non-minimal tags, merged contents,
// repeated map values and keys, wrong wire types, groups, and malformed
// input.
func handWire() [][]byte {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	msg := func(b []byte, num protowire.Number, body []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), body)
	}
	var contents []byte
	contents = protowire.AppendFixed32(tag(contents, 6, protowire.Fixed32Type), math.Float32bits(1.5)) // unpacked fp32
	contents = protowire.AppendFixed64(tag(contents, 7, protowire.Fixed64Type), math.Float64bits(2.5))
	contents = protowire.AppendVarint(tag(contents, 1, protowire.VarintType), 2) // bool 2 is true
	contents = protowire.AppendVarint(tag(contents, 2, protowire.VarintType), math.MaxUint64)
	contents = protowire.AppendVarint(tag(contents, 3, protowire.VarintType), 1<<40)
	contents = protowire.AppendVarint(tag(contents, 4, protowire.VarintType), 1<<33)
	contents = protowire.AppendVarint(tag(contents, 5, protowire.VarintType), 9)
	contents = protowire.AppendFixed32(tag(contents, 1, protowire.Fixed32Type), 1) // wrong type: unknown
	var in []byte
	in = msg(in, 1, []byte("x"))
	in = protowire.AppendVarint(tag(in, 3, protowire.VarintType), 4) // unpacked shape
	in = msg(in, 3, protowire.AppendVarint(protowire.AppendVarint(nil, 1), 2))
	in = msg(in, 5, contents)
	in = msg(in, 5, contents) // merged
	in = protowire.AppendFixed64(tag(in, 3, protowire.Fixed64Type), 0)
	var entry []byte
	entry = msg(entry, 2, protowire.AppendVarint(tag(nil, 1, protowire.VarintType), 1))
	entry = msg(entry, 2, protowire.AppendFixed64(tag(nil, 4, protowire.Fixed64Type), 7)) // merged: double wins
	entry = protowire.AppendVarint(tag(entry, 3, protowire.VarintType), 1)                // dropped
	entry = msg(entry, 1, []byte("k"))
	var req []byte
	req = msg(req, 5, in)
	req = msg(req, 4, entry)
	req = msg(req, 4, msg(nil, 1, []byte("k"))) // replaces
	req = msg(req, 4, nil)                      // key "", empty value
	req = append(req, 0x8a, 0x80, 0x00)         // field 1, non-minimal tag
	req = protowire.AppendString(req, "name")
	req = tag(req, 30, protowire.StartGroupType)
	req = protowire.AppendVarint(tag(req, 1, protowire.VarintType), 3)
	req = tag(req, 30, protowire.EndGroupType)
	req = protowire.AppendVarint(tag(req, 1, protowire.VarintType), 3) // wrong type for model_name
	return [][]byte{
		req,
		tag(nil, 30, protowire.EndGroupType),
		msg(nil, 1, []byte{0xff}), // invalid UTF-8
		msg(nil, 5, msg(nil, 5, []byte{0x32, 0x03, 1, 2, 3})), // fp32 packed, length not a multiple of 4
		{0x0a, 0x05, 'a'}, // truncated
		{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		{0x00},                               // field 0
		{0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00}, // field 2^29-1 is valid
		{0x80, 0x80, 0x80, 0x80, 0x10, 0x00}, // field 2^29 is not
	}
}

func seedWire(f *testing.F) {
	for _, m := range wireRequests() {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, b := range handWire() {
		f.Add(b)
	}
}

var defaultBudget = protocol.Limits{}.WithDefaults()

// checkWire decodes b with proto.Unmarshal and by hand (alone and in a
// request block) and fails unless both accept or both refuse it and the
// messages are equal.
func checkWire(t *testing.T, b []byte) {
	t.Helper()
	want := &pb.ModelInferRequest{}
	werr := proto.Unmarshal(b, want)
	got := &pb.ModelInferRequest{}
	gerr := unmarshalRequest(b, got, defaultBudget, nil)
	dr := newDecodedRequest()
	berr := unmarshalRequest(b, dr.ModelInferRequest, defaultBudget, dr.blk)
	if (werr == nil) != (gerr == nil) || (werr == nil) != (berr == nil) {
		t.Fatalf("%x: proto.Unmarshal: %v; by hand: %v; in a block: %v", b, werr, gerr, berr)
	}
	if werr != nil {
		return
	}
	if !proto.Equal(want, got) {
		t.Fatalf("%x: by hand\n%v\nproto.Unmarshal\n%v", b, got, want)
	}
	if !proto.Equal(want, dr.ModelInferRequest) {
		t.Fatalf("%x: in a block\n%v\nproto.Unmarshal\n%v", b, dr.ModelInferRequest, want)
	}
}

func TestInferRequestWire(t *testing.T) {
	for _, m := range wireRequests() {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		checkWire(t, b)
	}
	for _, b := range handWire() {
		checkWire(t, b)
	}
}

// FuzzInferRequestWire: for any bytes, the hand-written decoder accepts
// what proto.Unmarshal accepts and yields an equal ModelInferRequest,
// unknown fields included.
func FuzzInferRequestWire(f *testing.F) {
	seedWire(f)
	f.Fuzz(checkWire)
}

// checkResponseWire encodes m by hand and through Codec and fails unless
// the bytes are as long as sizeResponse said and proto.Unmarshal reads
// back an equal message.
func checkResponseWire(t *testing.T, m *pb.ModelInferResponse) {
	t.Helper()
	if !encodable(m) {
		t.Fatalf("not encodable: %v", m)
	}
	size, sizes := sizeResponse(m, nil)
	b := appendResponse(nil, m, sizes)
	if len(b) != size {
		t.Fatalf("encoded %d bytes, sizeResponse said %d", len(b), size)
	}
	back := &pb.ModelInferResponse{}
	if err := proto.Unmarshal(b, back); err != nil {
		t.Fatalf("proto.Unmarshal of %x: %v", b, err)
	}
	if !proto.Equal(m, back) {
		t.Fatalf("round trip\n%v\nwant\n%v", back, m)
	}
	data, err := NewCodec(protocol.Limits{}).Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back.Reset()
	if err := proto.Unmarshal(data.Materialize(), back); err != nil || !proto.Equal(m, back) {
		t.Fatalf("codec: %v\n%v\nwant\n%v", err, back, m)
	}
	data.Free()
}

// FuzzInferResponseWire: any ModelInferResponse (read from the fuzzer's
// bytes by proto.Unmarshal) encodes by hand to bytes that proto.Unmarshal
// reads back to an equal message.
func FuzzInferResponseWire(f *testing.F) {
	seedWire(f)
	for _, raw := range []bool{false, true} {
		resp := &InferResponse{ModelName: "m", ModelVersion: "1", ID: "x", Parameters: map[string]any{"a": int64(1), "b": "c"},
			Outputs: []*tensor.Tensor{
				{Name: "p", Datatype: tensor.FP32, Shape: []int64{2}, Data: []float32{0.5, -1}, Parameters: map[string]any{"d": 1.5}},
				{Name: "q", Datatype: tensor.Int8, Shape: []int64{1}, Data: []int8{-3}},
				{Name: "s", Datatype: tensor.Bytes, Shape: []int64{1}, Data: [][]byte{[]byte("x")}},
			}}
		b, err := proto.Marshal(ToProto(resp, raw))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &pb.ModelInferResponse{}
		if proto.Unmarshal(b, m) != nil {
			return
		}
		checkResponseWire(t, m)
	})
}

// Responses proto.Marshal refuses are left to it, so that the codec fails
// as grpc's proto codec would.
func TestCodecLeavesInvalidResponses(t *testing.T) {
	c := NewCodec(protocol.Limits{})
	for _, m := range []*pb.ModelInferResponse{
		{ModelName: "\xff"},
		{Outputs: []*pb.ModelInferResponse_InferOutputTensor{{Name: "\xff"}}},
		{Parameters: map[string]*pb.InferParameter{"k": {ParameterChoice: &pb.InferParameter_StringParam{StringParam: "\xfe"}}}},
	} {
		if encodable(m) {
			t.Errorf("%v: encodable", m)
		}
		if _, err := c.Marshal(m); err == nil {
			t.Errorf("%v: codec encoded it", m)
		}
	}
}

// The codec hands other messages to grpc's proto codec.
func TestCodecOtherMessages(t *testing.T) {
	c := NewCodec(protocol.Limits{})
	in := &pb.ModelMetadataResponse{Name: "m", Versions: []string{"1"}}
	data, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out := &pb.ModelMetadataResponse{}
	if err := c.Unmarshal(data, out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, out) {
		t.Fatalf("got %v, want %v", out, in)
	}
}

// A message split over several buffers decodes as one.
func TestCodecSplitBuffers(t *testing.T) {
	want := wireRequests()[1]
	b, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	data := mem.BufferSlice{mem.SliceBuffer(b[:7]), mem.SliceBuffer(b[7:30]), mem.SliceBuffer(b[30:])}
	got := newDecodedRequest()
	if err := NewCodec(protocol.Limits{}).Unmarshal(data, got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(want, got.ModelInferRequest) {
		t.Fatalf("got %v, want %v", got.ModelInferRequest, want)
	}
}

// Hostile requests: what the decoder allocates stays within the budget,
// and a request over it is refused with ErrTooLarge naming the limit; the
// handler's decodedRequest carries the error instead of failing the
// decode (grpc would answer INTERNAL).
func TestWireBudget(t *testing.T) {
	const n = 4 << 20
	packed := func(num protowire.Number, one []byte) []byte {
		run := make([]byte, 0, n*len(one))
		for range n {
			run = append(run, one...)
		}
		var c []byte
		c = protowire.AppendBytes(protowire.AppendTag(c, num, protowire.BytesType), run)
		in := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), c)
		return protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), in)
	}
	var emptyInputs, emptyStrings []byte
	for range n {
		emptyInputs = append(emptyInputs, 0x2a, 0x00)
	}
	var c []byte
	for range n / 2 {
		c = append(c, 0x42, 0x00)
	}
	emptyStrings = protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType),
		protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), c))
	lim := protocol.Limits{MaxElements: 1 << 20, MaxDecodedBytes: 1 << 20}
	for _, tc := range []struct {
		name string
		b    []byte
		flag string
	}{
		{"int64 varints", packed(3, []byte{1}), "--max-request-elements"},
		{"bools", packed(1, []byte{1}), "--max-request-elements"},
		{"fp32", packed(6, []byte{0, 0, 0, 0}), "--max-request-elements"},
		{"empty inputs", emptyInputs, "--max-request-decoded-bytes"},
		{"empty strings", emptyStrings, "--max-request-decoded-bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if proto.Unmarshal(tc.b, &pb.ModelInferRequest{}) != nil {
				t.Fatal("proto.Unmarshal refuses the message")
			}
			var err error
			got := allocated(func() {
				err = unmarshalRequest(tc.b, &pb.ModelInferRequest{}, lim.WithDefaults(), nil)
			})
			wantTooLarge(t, err, tc.flag)
			if got > 3<<20 {
				t.Errorf("%d-byte message: %d bytes allocated, budget %d", len(tc.b), got, lim.MaxDecodedBytes)
			}
			dr := newDecodedRequest()
			if err := NewCodec(lim).Unmarshal(mem.BufferSlice{mem.SliceBuffer(tc.b)}, dr); err != nil {
				t.Fatalf("codec: %v", err)
			}
			wantTooLarge(t, dr.err, tc.flag)
			if err := NewCodec(lim).Unmarshal(mem.BufferSlice{mem.SliceBuffer(tc.b)}, &pb.ModelInferRequest{}); !errors.Is(err, protocol.ErrTooLarge) {
				t.Fatalf("codec into a plain request: %v", err)
			}
		})
	}
}

// A repeated field split into many packed runs and single values, in
// turn, is allocated once or twice, not grown run by run: the decoder
// allocates little more than the decoded values and stays linear.
// (proto.Unmarshal grows the slice by each run, exactly: quadratic, so it
// is compared on a short field only.)
func TestWireSplitRuns(t *testing.T) {
	split := func(n int) []byte {
		var c []byte
		for i := range n {
			if i%2 == 0 {
				c = protowire.AppendBytes(protowire.AppendTag(c, 3, protowire.BytesType), []byte{1}) // a run of one
			} else {
				c = protowire.AppendVarint(protowire.AppendTag(c, 3, protowire.VarintType), 2)
			}
		}
		in := protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), c)
		return protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), in)
	}
	checkWire(t, split(1<<10))
	const n = 1 << 20
	b := split(n)
	m := &pb.ModelInferRequest{}
	var err error
	got := allocated(func() { err = unmarshalRequest(b, m, defaultBudget, nil) })
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Inputs[0].Contents.Int64Contents) != n {
		t.Fatalf("%d values, want %d", len(m.Inputs[0].Contents.Int64Contents), n)
	}
	if got > 3*8*n {
		t.Errorf("%d values of 8 bytes: %d bytes allocated", n, got)
	}
}

// A batch-1 request decodes in two allocations: the block (request, input,
// contents, shape) and the features; names and the datatype are interned
// (the id "1" is one of Go's static one-byte strings).
func TestWireDecodeAllocs(t *testing.T) {
	b, err := proto.Marshal(&pb.ModelInferRequest{ModelName: "bench", Id: "1", Inputs: []*pb.ModelInferRequest_InferInputTensor{fp32Input("input-0", 20)}})
	if err != nil {
		t.Fatal(err)
	}
	c := NewCodec(protocol.Limits{})
	data := mem.BufferSlice{mem.SliceBuffer(b)}
	got := testing.AllocsPerRun(100, func() {
		if err := c.Unmarshal(data, newDecodedRequest()); err != nil {
			t.Fatal(err)
		}
	})
	if got > 2 {
		t.Errorf("%v allocations per request, want at most 2", got)
	}
}

func BenchmarkInferRequestWire(b *testing.B) {
	data, err := proto.Marshal(&pb.ModelInferRequest{ModelName: "bench", Inputs: []*pb.ModelInferRequest_InferInputTensor{fp32Input("input-0", 20)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := proto.Unmarshal(data, &pb.ModelInferRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dr := newDecodedRequest()
			if err := unmarshalRequest(data, dr.ModelInferRequest, defaultBudget, dr.blk); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkInferResponseWire(b *testing.B) {
	resp := ToProto(&InferResponse{ModelName: "bench", Outputs: []*tensor.Tensor{{Name: "predict", Datatype: tensor.FP32, Shape: []int64{1}, Data: []float32{0.5}}}}, false)
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		c := encoding.GetCodecV2(grpcproto.Name)
		for b.Loop() {
			data, err := c.Marshal(resp)
			if err != nil {
				b.Fatal(err)
			}
			data.Free()
		}
	})
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		c := NewCodec(protocol.Limits{})
		for b.Loop() {
			data, err := c.Marshal(resp)
			if err != nil {
				b.Fatal(err)
			}
			data.Free()
		}
	})
}

func BenchmarkInferResponseAppend(b *testing.B) {
	resp := ToProto(&InferResponse{ModelName: "bench", Outputs: []*tensor.Tensor{{Name: "predict", Datatype: tensor.FP32, Shape: []int64{1}, Data: []float32{0.5}}}}, false)
	buf := make([]byte, 0, 256)
	for b.Loop() {
		if encodable(resp) {
			buf = marshalResponse(buf[:0], resp)
		}
	}
}
