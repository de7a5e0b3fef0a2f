package v2

import (
	"math"
	"slices"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/ferryserve/ferry/api/inference"
)

// This file encodes ModelInferResponse in the protobuf wire format by hand
// (issue 15), into a buffer the codec takes from grpc's pool. The bytes
// proto.Unmarshal back to an equal message (FuzzInferResponseWire); a
// response proto.Marshal would refuse (a string that is not UTF-8, a nil
// output or parameter) is left to it: encodable reports those.

// encodable reports whether the hand-written encoder takes m.
func encodable(m *pb.ModelInferResponse) bool {
	if !utf8.ValidString(m.ModelName) || !utf8.ValidString(m.ModelVersion) || !utf8.ValidString(m.Id) || !paramsEncodable(m.Parameters) {
		return false
	}
	for _, o := range m.Outputs {
		if o == nil || !utf8.ValidString(o.Name) || !utf8.ValidString(o.Datatype) || !paramsEncodable(o.Parameters) {
			return false
		}
	}
	return true
}

func paramsEncodable(ps map[string]*pb.InferParameter) bool {
	for k, p := range ps {
		if p == nil || !utf8.ValidString(k) {
			return false
		}
		if s, ok := p.ParameterChoice.(*pb.InferParameter_StringParam); ok && !utf8.ValidString(s.StringParam) {
			return false
		}
	}
	return true
}

func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func appendStringField(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// sizeMessage is the size of a length-delimited field of n bytes.
func sizeMessage(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func sizeParam(p *pb.InferParameter) int {
	n := 0
	switch v := p.ParameterChoice.(type) {
	case *pb.InferParameter_BoolParam:
		n = 1 + protowire.SizeVarint(protowire.EncodeBool(v.BoolParam))
	case *pb.InferParameter_Int64Param:
		n = 1 + protowire.SizeVarint(uint64(v.Int64Param))
	case *pb.InferParameter_StringParam:
		n = 1 + protowire.SizeBytes(len(v.StringParam))
	case *pb.InferParameter_DoubleParam:
		n = 1 + 8
	case *pb.InferParameter_Uint64Param:
		n = 1 + protowire.SizeVarint(v.Uint64Param)
	}
	return n + len(p.ProtoReflect().GetUnknown())
}

func appendParam(b []byte, p *pb.InferParameter) []byte {
	switch v := p.ParameterChoice.(type) {
	case *pb.InferParameter_BoolParam:
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(v.BoolParam))
	case *pb.InferParameter_Int64Param:
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v.Int64Param))
	case *pb.InferParameter_StringParam:
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, v.StringParam)
	case *pb.InferParameter_DoubleParam:
		b = protowire.AppendTag(b, 4, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v.DoubleParam))
	case *pb.InferParameter_Uint64Param:
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, v.Uint64Param)
	}
	return append(b, p.ProtoReflect().GetUnknown()...)
}

// entrySize is the size of a map entry's body: key (field 1) and value
// (field 2), both always written, as proto.Marshal writes them.
func entrySize(k string, p *pb.InferParameter) int {
	return protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + sizeMessage(2, sizeParam(p))
}

func sizeParams(num protowire.Number, ps map[string]*pb.InferParameter) int {
	n := 0
	for k, p := range ps {
		n += sizeMessage(num, entrySize(k, p))
	}
	return n
}

func appendParams(b []byte, num protowire.Number, ps map[string]*pb.InferParameter) []byte {
	for k, p := range ps {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(entrySize(k, p)))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeParam(p)))
		b = appendParam(b, p)
	}
	return b
}

// packedVarints is the size of a packed run's body.
func packedVarints[T int32 | int64 | uint32 | uint64](s []T) int {
	n := 0
	for _, v := range s {
		n += protowire.SizeVarint(uint64(v)) // int32 sign-extends, as proto encodes it
	}
	return n
}

func sizePacked(num protowire.Number, body int) int {
	if body == 0 {
		return 0
	}
	return sizeMessage(num, body)
}

func appendPackedVarints[T int32 | int64 | uint32 | uint64](b []byte, num protowire.Number, s []T) []byte {
	if len(s) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(packedVarints(s)))
	for _, v := range s {
		b = protowire.AppendVarint(b, uint64(v))
	}
	return b
}

func sizeContents(c *pb.InferTensorContents) int {
	n := sizePacked(1, len(c.BoolContents)) +
		sizePacked(2, packedVarints(c.IntContents)) +
		sizePacked(3, packedVarints(c.Int64Contents)) +
		sizePacked(4, packedVarints(c.UintContents)) +
		sizePacked(5, packedVarints(c.Uint64Contents)) +
		sizePacked(6, 4*len(c.Fp32Contents)) +
		sizePacked(7, 8*len(c.Fp64Contents))
	for _, v := range c.BytesContents {
		n += sizeMessage(8, len(v))
	}
	return n + len(c.ProtoReflect().GetUnknown())
}

func appendContents(b []byte, c *pb.InferTensorContents) []byte {
	if len(c.BoolContents) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(c.BoolContents)))
		for _, v := range c.BoolContents {
			b = append(b, byte(protowire.EncodeBool(v)))
		}
	}
	b = appendPackedVarints(b, 2, c.IntContents)
	b = appendPackedVarints(b, 3, c.Int64Contents)
	b = appendPackedVarints(b, 4, c.UintContents)
	b = appendPackedVarints(b, 5, c.Uint64Contents)
	if len(c.Fp32Contents) > 0 {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(4*len(c.Fp32Contents)))
		for _, v := range c.Fp32Contents {
			b = protowire.AppendFixed32(b, math.Float32bits(v))
		}
	}
	if len(c.Fp64Contents) > 0 {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(8*len(c.Fp64Contents)))
		for _, v := range c.Fp64Contents {
			b = protowire.AppendFixed64(b, math.Float64bits(v))
		}
	}
	for _, v := range c.BytesContents {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, v)
	}
	return append(b, c.ProtoReflect().GetUnknown()...)
}

// sizeOutput is o's encoded size, cs its contents' (ignored when nil).
func sizeOutput(o *pb.ModelInferResponse_InferOutputTensor, cs int) int {
	n := sizeString(1, o.Name) + sizeString(2, o.Datatype) + sizePacked(3, packedVarints(o.Shape)) + sizeParams(4, o.Parameters)
	if o.Contents != nil {
		n += sizeMessage(5, cs)
	}
	return n + len(o.ProtoReflect().GetUnknown())
}

func appendOutput(b []byte, o *pb.ModelInferResponse_InferOutputTensor, cs int) []byte {
	b = appendStringField(b, 1, o.Name)
	b = appendStringField(b, 2, o.Datatype)
	b = appendPackedVarints(b, 3, o.Shape)
	b = appendParams(b, 4, o.Parameters)
	if o.Contents != nil {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(cs))
		b = appendContents(b, o.Contents)
	}
	return append(b, o.ProtoReflect().GetUnknown()...)
}

// sizeResponse is the encoded size of m, which encodable accepted. It
// appends each output's size and its contents' to sizes, for
// appendResponse.
func sizeResponse(m *pb.ModelInferResponse, sizes []int) (int, []int) {
	n := sizeString(1, m.ModelName) + sizeString(2, m.ModelVersion) + sizeString(3, m.Id) + sizeParams(4, m.Parameters)
	for _, o := range m.Outputs {
		cs := 0
		if o.Contents != nil {
			cs = sizeContents(o.Contents)
		}
		os := sizeOutput(o, cs)
		sizes = append(sizes, os, cs)
		n += sizeMessage(5, os)
	}
	for _, r := range m.RawOutputContents {
		n += sizeMessage(6, len(r))
	}
	return n + len(m.ProtoReflect().GetUnknown()), sizes
}

// appendResponse appends m's encoding, in field order, to b; sizes are
// sizeResponse's.
func appendResponse(b []byte, m *pb.ModelInferResponse, sizes []int) []byte {
	b = appendStringField(b, 1, m.ModelName)
	b = appendStringField(b, 2, m.ModelVersion)
	b = appendStringField(b, 3, m.Id)
	b = appendParams(b, 4, m.Parameters)
	for i, o := range m.Outputs {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizes[2*i]))
		b = appendOutput(b, o, sizes[2*i+1])
	}
	for _, r := range m.RawOutputContents {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, r)
	}
	return append(b, m.ProtoReflect().GetUnknown()...)
}

// marshalResponse appends m's encoding to b.
func marshalResponse(b []byte, m *pb.ModelInferResponse) []byte {
	var arr [8]int
	n, sizes := sizeResponse(m, arr[:0])
	b = slices.Grow(b, n)
	return appendResponse(b, m, sizes)
}
