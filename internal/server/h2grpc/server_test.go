package h2grpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	_ "google.golang.org/grpc/encoding/gzip" // the compression test's client and server
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/ferryserve/ferry/internal/server/h2grpc"
)

// testService echoes payloads, metadata and errors as the tests ask.
type testService struct {
	testpb.UnimplementedTestServiceServer
	started chan struct{} // receives when a blocking call starts
	ended   chan error    // receives a blocking call's ctx.Err()
}

func (s *testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	switch string(req.GetPayload().GetBody()) {
	case "block":
		s.started <- struct{}{}
		<-ctx.Done()
		s.ended <- ctx.Err()
		return nil, ctx.Err()
	case "details":
		st, _ := status.New(codes.FailedPrecondition, "bad thing: ünïcode % 100").
			WithDetails(&errdetails.ErrorInfo{Reason: "R", Domain: "d"})
		return nil, st.Err()
	case "plain-error":
		return nil, errors.New("plain")
	case "echo-md":
		_ = grpc.SetHeader(ctx, metadata.Pairs("h-out", "hv", "h-out-bin", "\x00\xff"))
		_ = grpc.SetTrailer(ctx, metadata.Pairs("t-out", "tv"))
		p, _ := peer.FromContext(ctx)
		_, hasDeadline := ctx.Deadline()
		m, _ := grpc.Method(ctx)
		body := fmt.Sprintf("method=%s peer=%v deadline=%v k=%v bin=%q ua=%v", m, p != nil, hasDeadline,
			md.Get("k"), md.Get("k-bin"), strings.HasPrefix(strings.Join(md.Get("user-agent"), ""), "grpc-go"))
		return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: []byte(body)}}, nil
	}
	out := req.GetPayload().GetBody()
	if n := req.GetResponseSize(); n > 0 {
		out = bytes.Repeat([]byte{'x'}, int(n))
	}
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: out}}, nil
}

func (s *testService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			stream.SetTrailer(metadata.Pairs("done", "yes"))
			return nil
		}
		if err != nil {
			return err
		}
		for _, p := range req.GetResponseParameters() {
			if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: bytes.Repeat(req.GetPayload().GetBody(), int(p.GetSize()))}}); err != nil {
				return err
			}
		}
	}
}

type fixture struct {
	srv  *h2grpc.Server
	addr string
	cc   *grpc.ClientConn
	svc  *testService
	hs   *health.Server
	done chan error
}

func start(t testing.TB, cfg h2grpc.Config) *fixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: h2grpc.NewServer(cfg), addr: ln.Addr().String(), done: make(chan error, 1),
		svc: &testService{started: make(chan struct{}, 1), ended: make(chan error, 1)}, hs: health.NewServer()}
	testpb.RegisterTestServiceServer(f.srv, f.svc)
	healthpb.RegisterHealthServer(f.srv, f.hs)
	reflection.Register(f.srv)
	go func() { f.done <- f.srv.Serve(ln) }()
	f.cc = dial(t, f.addr)
	t.Cleanup(func() {
		f.srv.Stop()
		if err := <-f.done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return f
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func body(s string) *testpb.SimpleRequest {
	return &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(s)}}
}

func TestUnaryMetadata(t *testing.T) {
	f := start(t, h2grpc.Config{})
	c := testpb.NewTestServiceClient(f.cc)
	ctx := metadata.AppendToOutgoingContext(ctx5(t), "k", "v1", "k", "v2", "k-bin", "\x01\x02\xff")
	var hdr, trl metadata.MD
	resp, err := c.UnaryCall(ctx, body("echo-md"), grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		t.Fatal(err)
	}
	want := `method=/grpc.testing.TestService/UnaryCall peer=true deadline=true k=[v1 v2] bin=["\x01\x02\xff"] ua=true`
	if got := string(resp.GetPayload().GetBody()); got != want {
		t.Errorf("handler saw\n%s\nwant\n%s", got, want)
	}
	if got := hdr.Get("h-out"); len(got) != 1 || got[0] != "hv" {
		t.Errorf("header h-out = %v", got)
	}
	if got := hdr.Get("h-out-bin"); len(got) != 1 || got[0] != "\x00\xff" {
		t.Errorf("header h-out-bin = %q", got)
	}
	if got := trl.Get("t-out"); len(got) != 1 || got[0] != "tv" {
		t.Errorf("trailer t-out = %v", got)
	}
}

func TestErrors(t *testing.T) {
	f := start(t, h2grpc.Config{})
	c := testpb.NewTestServiceClient(f.cc)
	ctx := ctx5(t)
	_, err := c.UnaryCall(ctx, body("details"))
	st := status.Convert(err)
	if st.Code() != codes.FailedPrecondition || st.Message() != "bad thing: ünïcode % 100" {
		t.Errorf("details call: %v", err)
	}
	if d := st.Details(); len(d) != 1 || d[0].(*errdetails.ErrorInfo).GetReason() != "R" {
		t.Errorf("details = %v", d)
	}
	if _, err := c.UnaryCall(ctx, body("plain-error")); status.Code(err) != codes.Unknown || status.Convert(err).Message() != "plain" {
		t.Errorf("plain error: %v", err)
	}
	if _, err := c.EmptyCall(ctx, &testpb.Empty{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("unimplemented method: %v", err)
	}
	err = f.cc.Invoke(ctx, "/no.Such/Method", &testpb.Empty{}, &testpb.Empty{})
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "unknown method Method for service no.Such") {
		t.Errorf("unknown service: %v", err)
	}
}

func TestDeadlineAndCancel(t *testing.T) {
	f := start(t, h2grpc.Config{})
	c := testpb.NewTestServiceClient(f.cc)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.UnaryCall(ctx, body("block")); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("deadline: %v", err)
	}
	<-f.svc.started
	if err := <-f.svc.ended; !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Errorf("server context ended with %v", err)
	}

	ctx, cancel = context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.UnaryCall(ctx, body("block"))
		errc <- err
	}()
	<-f.svc.started
	cancel()
	if err := <-errc; status.Code(err) != codes.Canceled {
		t.Errorf("cancel: %v", err)
	}
	select {
	case err := <-f.svc.ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("server context ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the handler's context was not cancelled")
	}
}

func TestLargeMessages(t *testing.T) {
	f := start(t, h2grpc.Config{MaxRecvMsgSize: 16 << 20})
	c := testpb.NewTestServiceClient(f.cc)
	ctx := ctx5(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16) // 8 MiB: over every window
	resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: big}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.GetPayload().GetBody(), big) {
		t.Fatal("8 MiB echo differs")
	}
	resp, err = c.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 12 << 20})
	if err != nil || len(resp.GetPayload().GetBody()) != 12<<20 {
		t.Fatalf("12 MiB response: %v", err)
	}
	tooBig := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, 17<<20)}}
	if _, err := c.UnaryCall(ctx, tooBig); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("over MaxRecvMsgSize: %v", err)
	}
	// The connection still serves.
	if _, err := c.UnaryCall(ctx, body("after")); err != nil {
		t.Errorf("after a refused message: %v", err)
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	f := start(t, h2grpc.Config{MaxConcurrentStreams: 64})
	c := testpb.NewTestServiceClient(f.cc)
	ctx := ctx5(t)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := range 200 {
		wg.Go(func() {
			for i := range 20 {
				want := fmt.Sprintf("g%d-%d", g, i)
				resp, err := c.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte(want)}})
				if err == nil && string(resp.GetPayload().GetBody()) != want {
					err = fmt.Errorf("got %q, want %q", resp.GetPayload().GetBody(), want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCompression(t *testing.T) {
	f := start(t, h2grpc.Config{})
	c := testpb.NewTestServiceClient(f.cc)
	want := strings.Repeat("compress me ", 1000)
	resp, err := c.UnaryCall(ctx5(t), body(want), grpc.UseCompressor("gzip"))
	if err != nil || string(resp.GetPayload().GetBody()) != want {
		t.Fatalf("gzip call: %v", err)
	}
}

func TestBidiStreaming(t *testing.T) {
	f := start(t, h2grpc.Config{})
	stream, err := testpb.NewTestServiceClient(f.cc).FullDuplexCall(ctx5(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		size := int32(1 + i*2000) // up to ~100 KiB per message, over the client's window
		if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("ab")},
			ResponseParameters: []*testpb.ResponseParameters{{Size: size}, {Size: 1}}}); err != nil {
			t.Fatal(err)
		}
		for _, n := range []int32{size, 1} {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetPayload().GetBody()) != 2*int(n) {
				t.Fatalf("message %d: %d bytes, want %d", i, len(resp.GetPayload().GetBody()), 2*n)
			}
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if got := stream.Trailer().Get("done"); len(got) != 1 {
		t.Errorf("trailer = %v", stream.Trailer())
	}
}

func TestReflectionLists(t *testing.T) {
	f := start(t, h2grpc.Config{})
	stream, err := reflectpb.NewServerReflectionClient(f.cc).ServerReflectionInfo(ctx5(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	got := strings.Join(names, ",")
	for _, want := range []string{"grpc.testing.TestService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !strings.Contains(got, want) {
			t.Errorf("reflection lists %s, want %s among them", got, want)
		}
	}
	if err := stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "grpc.testing.TestService"}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Fatalf("file containing symbol: %v %v", resp, err)
	}
	stream.CloseSend()
}

func TestHealthWatch(t *testing.T) {
	f := start(t, h2grpc.Config{})
	f.hs.SetServingStatus("svc", healthpb.HealthCheckResponse_NOT_SERVING)
	ctx, cancel := context.WithCancel(ctx5(t))
	w, err := healthpb.NewHealthClient(f.cc).Watch(ctx, &healthpb.HealthCheckRequest{Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	next := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		resp, err := w.Recv()
		if err != nil || resp.GetStatus() != want {
			t.Fatalf("watch: %v %v, want %v", resp, err, want)
		}
	}
	next(healthpb.HealthCheckResponse_NOT_SERVING)
	f.hs.SetServingStatus("svc", healthpb.HealthCheckResponse_SERVING)
	next(healthpb.HealthCheckResponse_SERVING)
	cancel()
	if _, err := w.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("after cancel: %v", err)
	}
}

func TestGracefulStop(t *testing.T) {
	f := start(t, h2grpc.Config{})
	c := testpb.NewTestServiceClient(f.cc)
	ctx := ctx5(t)
	if _, err := c.UnaryCall(ctx, body("warm")); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	bctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	go func() {
		_, err := c.UnaryCall(bctx, body("block"))
		errc <- err
	}()
	<-f.svc.started
	stopped := make(chan struct{})
	go func() {
		f.srv.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
		t.Fatal("GracefulStop returned with a call in flight")
	case <-time.After(100 * time.Millisecond):
	}
	if err := <-errc; status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("in-flight call: %v", err)
	}
	<-f.svc.ended
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("GracefulStop did not return after the last call")
	}
	if err := <-f.done; err != nil {
		t.Errorf("serve: %v", err)
	}
	f.done <- nil
}
