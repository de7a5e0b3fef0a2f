package v2

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	pb "github.com/ferryserve/ferry/api/inference"
	"github.com/ferryserve/ferry/internal/protocol"
)

// Codec is the gRPC server codec of ferry serve (issue 15): ModelInfer's
// request is decoded and its response encoded by hand (wiredecode.go,
// wireencode.go), skipping proto's reflection-driven Unmarshal and Marshal;
// every other message goes to grpc's standard proto codec. Install it with
// grpc.ForceServerCodecV2 and register the service with RegisterGRPC, whose
// ModelInfer handler hands the decoder's budget error to the service.
type Codec struct {
	// Limits bound what a request may decode to, checked while it is
	// decoded (zero fields take the defaults). The handler's own limits
	// (protocol.LimitsFrom) apply afterwards, as before.
	Limits protocol.Limits
	std    encoding.CodecV2
}

var _ encoding.CodecV2 = (*Codec)(nil)

// NewCodec returns a Codec under lim.
func NewCodec(lim protocol.Limits) *Codec {
	return &Codec{Limits: lim.WithDefaults(), std: encoding.GetCodecV2(proto.Name)}
}

// Name implements encoding.CodecV2: the codec stands in for "proto".
func (c *Codec) Name() string { return proto.Name }

// Response buffers up to maxPooled bytes come from respBuffers, larger
// ones from grpc's pool. Each buffer holds more than 1 KiB, because
// grpc returns smaller ones to no pool (mem.NewBuffer).
const (
	minPooled = 2 << 10
	maxPooled = 64 << 10
)

// bufferPool is a mem.BufferPool for response encodings. grpc's own pool
// clears every buffer it hands out, which cost a batch-1 response more than
// encoding it; these are written in full before anything reads them.
type bufferPool struct{ p sync.Pool }

var respBuffers bufferPool

// Get implements mem.BufferPool.
func (bp *bufferPool) Get(n int) *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, max(n, minPooled))
	return &b
}

// Put implements mem.BufferPool.
func (bp *bufferPool) Put(b *[]byte) {
	if cap(*b) <= maxPooled {
		bp.p.Put(b)
	}
}

// Marshal implements encoding.CodecV2.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*pb.ModelInferResponse)
	if !ok || m == nil || !encodable(m) {
		return c.std.Marshal(v)
	}
	var arr [8]int // the sizes of up to 4 outputs and their contents
	size, sizes := sizeResponse(m, arr[:0])
	var pool mem.BufferPool = &respBuffers
	if size > maxPooled {
		pool = mem.DefaultBufferPool()
	}
	buf := pool.Get(size)
	*buf = appendResponse((*buf)[:0], m, sizes)
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal implements encoding.CodecV2.
func (c *Codec) Unmarshal(data mem.BufferSlice, v any) error {
	var (
		m   *pb.ModelInferRequest
		blk *requestBlock
		dr  *decodedRequest
	)
	switch v := v.(type) {
	case *decodedRequest:
		dr, m, blk = v, v.ModelInferRequest, v.blk
	case *pb.ModelInferRequest:
		m = v
	default:
		return c.std.Unmarshal(data, v)
	}
	var err error
	if len(data) == 1 {
		err = unmarshalRequest(data[0].ReadOnlyData(), m, c.Limits, blk)
	} else {
		buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
		err = unmarshalRequest(buf.ReadOnlyData(), m, c.Limits, blk)
		buf.Free()
	}
	if dr != nil && isTooLarge(err) {
		dr.err = err // answered by the handler, past the interceptors
		return nil
	}
	return err
}

// RegisterGRPC registers g on s as pb.RegisterGRPCInferenceServiceServer
// does, but with a ModelInfer handler that decodes into a decodedRequest:
// with Codec installed, the first input shares the request's allocation,
// and a request over Codec's limits reaches the interceptors and is
// answered RESOURCE_EXHAUSTED, like one FromProtoWithin refuses (grpc
// answers a codec's errors INTERNAL). Without Codec, grpc's proto codec
// fills the embedded request as usual.
func RegisterGRPC(s grpc.ServiceRegistrar, g *GRPCServer) {
	desc := pb.GRPCInferenceService_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	for i := range desc.Methods {
		if desc.Methods[i].MethodName == "ModelInfer" {
			desc.Methods[i].Handler = modelInferHandler
		}
	}
	s.RegisterService(&desc, g)
}

var modelInferInfo = grpc.UnaryServerInfo{FullMethod: pb.GRPCInferenceService_ModelInfer_FullMethodName}

func modelInferHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := newDecodedRequest()
	if err := dec(in); err != nil {
		return nil, err
	}
	g := srv.(*GRPCServer)
	if interceptor == nil {
		return g.modelInfer(ctx, in.ModelInferRequest, in.err)
	}
	info := modelInferInfo
	info.Server = srv
	return interceptor(ctx, in.ModelInferRequest, &info, func(ctx context.Context, req any) (any, error) {
		r := req.(*pb.ModelInferRequest)
		if r != in.ModelInferRequest {
			return g.ModelInfer(ctx, r) // an interceptor replaced the request
		}
		return g.modelInfer(ctx, r, in.err)
	})
}

// modelInfer is ModelInfer for a request whose decoder may have refused it.
func (g *GRPCServer) modelInfer(ctx context.Context, in *pb.ModelInferRequest, decodeErr error) (*pb.ModelInferResponse, error) {
	if decodeErr == nil {
		return g.ModelInfer(ctx, in)
	}
	g.svc.observe(in.GetModelName(), protoGRPC, decodeErr, time.Now())
	return nil, grpcErr(decodeErr)
}

func isTooLarge(err error) bool { return err != nil && errors.Is(err, protocol.ErrTooLarge) }
