package router

import (
	"fmt"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/ferryserve/ferry/api/inference"
)

// rawCodec passes proxied messages through as bytes, so the proxy never
// decodes what it forwards (beyond peeking at the model name); services the
// ingress serves itself (reflection) get ordinary protobuf encoding.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.(*[]byte); ok {
		return *b, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("cannot encode %T", v)
	}
	return proto.Marshal(m)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = append((*b)[:0], data...)
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("cannot decode into %T", v)
	}
	return proto.Unmarshal(data, m)
}

func (rawCodec) Name() string { return "proto" }

// GRPCProxy routes inference.GRPCInferenceService calls to a service's
// predictor replicas: by the :authority host ({name}.{ns}.{domain}, with
// prev-/latest- tags) when it names a service, else by the request's model
// name. Messages are forwarded unchanged.
type GRPCProxy struct {
	r *Router

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// NewGRPCProxy returns a proxy over r's routes.
func NewGRPCProxy(r *Router) *GRPCProxy {
	return &GRPCProxy{r: r, conns: map[string]*grpc.ClientConn{}}
}

// Server returns a gRPC server that proxies every inference call and
// serves reflection (so grpcurl works against the ingress).
func (p *GRPCProxy) Server(opts ...grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.UnknownServiceHandler(p.handle), grpc.ForceServerCodec(rawCodec{}))
	s := grpc.NewServer(opts...)
	// Reflection describes the proxied service from the generated code,
	// though the ingress itself never decodes it.
	s.RegisterService(&grpc.ServiceDesc{ServiceName: pb.GRPCInferenceService_ServiceDesc.ServiceName, HandlerType: (*any)(nil), Metadata: pb.GRPCInferenceService_ServiceDesc.Metadata}, struct{}{})
	reflection.Register(s)
	return s
}

// Close closes the backend connections.
func (p *GRPCProxy) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.conns {
		c.Close()
		delete(p.conns, k)
	}
}

func (p *GRPCProxy) conn(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	p.conns[addr] = c
	return c, nil
}

const inferenceService = "/inference.GRPCInferenceService/"

func (p *GRPCProxy) handle(_ any, stream grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(stream)
	if !ok || !strings.HasPrefix(method, inferenceService) {
		return status.Errorf(codes.Unimplemented, "the ingress proxies inference.GRPCInferenceService only, not %s", method)
	}
	if strings.HasPrefix(method, inferenceService+"Repository") {
		return status.Error(codes.PermissionDenied, repositoryRefusal)
	}
	var req []byte
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	ctx := stream.Context()
	md, _ := metadata.FromIncomingContext(ctx)
	host := ""
	if a := md.Get(":authority"); len(a) > 0 {
		host = a[0]
	}
	model := modelName(method, req)
	be, rev, err := p.route(host, model)
	if err != nil {
		return err
	}
	cc, err := p.conn(be)
	if err != nil {
		return status.Errorf(codes.Unavailable, "backend %s: %v", be, err)
	}
	out := metadata.New(nil)
	for k, v := range md {
		if !strings.HasPrefix(k, ":") && k != "content-type" && k != "user-agent" {
			out[k] = v
		}
	}
	var resp []byte
	var header metadata.MD
	err = cc.Invoke(metadata.NewOutgoingContext(ctx, out), method, &req, &resp, grpc.ForceCodec(rawCodec{}), grpc.Header(&header))
	if header == nil {
		header = metadata.MD{}
	}
	header.Set(strings.ToLower(HeaderRevision), rev)
	_ = stream.SetHeader(header)
	if err != nil {
		return err
	}
	return stream.SendMsg(&resp)
}

// route picks the backend for a call.
func (p *GRPCProxy) route(host, model string) (string, string, error) {
	ix := p.r.ix.Load()
	svc, tag, ok := ix.hostRoute(host)
	if !ok {
		if model == "" {
			return "", "", status.Errorf(codes.InvalidArgument, "no service for authority %q and no model name in the request", host)
		}
		svcs := ix.byName[model]
		switch len(svcs) {
		case 0:
			return "", "", status.Errorf(codes.NotFound, "no InferenceService named %q", model)
		case 1:
			svc = svcs[0]
		default:
			return "", "", status.Errorf(codes.InvalidArgument, "%d InferenceServices are named %q; set the authority to %s.{namespace}.%s", len(svcs), model, model, ix.domain)
		}
	}
	c := svc.Components[Predictor]
	if c == nil || len(c.Targets) == 0 {
		return "", "", status.Errorf(codes.Unavailable, "%s/%s has no ready predictor", svc.Namespace, svc.Name)
	}
	t, err := pickTarget(c, tag)
	if err != nil {
		return "", "", status.Error(codes.NotFound, err.Error())
	}
	if len(t.GRPCBackends) == 0 {
		return "", "", status.Errorf(codes.Unavailable, "revision %s has no ready replica with a gRPC port", t.Revision)
	}
	return t.GRPCBackends[int(p.r.rr.Add(1)%uint64(len(t.GRPCBackends)))], t.Revision, nil
}

// modelName reads the model name of a V2 request: field 1 of
// ModelInferRequest (model_name), ModelMetadataRequest and ModelReadyRequest
// (name); the repository RPCs carry it in field 2 (or 1 in KServe's form).
func modelName(method string, msg []byte) string {
	field := protowire.Number(1)
	switch strings.TrimPrefix(method, inferenceService) {
	case "ModelInfer", "ModelMetadata", "ModelReady":
	case "RepositoryModelLoad", "RepositoryModelUnload":
		if n := stringField(msg, 2); n != "" {
			return n
		}
	default:
		return ""
	}
	return stringField(msg, field)
}

func stringField(msg []byte, want protowire.Number) string {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return ""
		}
		msg = msg[n:]
		if num == want && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return ""
			}
			return string(v)
		}
		m := protowire.ConsumeFieldValue(num, typ, msg)
		if m < 0 {
			return ""
		}
		msg = msg[m:]
	}
	return ""
}
