package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryserve/ferry/internal/server"
)

// HTTPSocket serves the same handler on a Unix socket, with both engines,
// replaces a stale socket file, and removes its socket on shutdown.
func TestHTTPSocket(t *testing.T) {
	for _, engine := range []string{server.EngineFast, server.EngineStd} {
		t.Run(engine, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "http.sock")
			stale, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			stale.(*net.UnixListener).SetUnlinkOnClose(false)
			stale.Close() // the file stays, as a killed process leaves it
			ts := startServer(t, false, server.Config{HTTPSocket: sock, HTTPEngine: engine})
			client := &http.Client{Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "unix", sock)
				},
			}}
			defer client.CloseIdleConnections()
			resp, err := client.Post("http://replica/v2/models/sum3/infer", "application/json",
				strings.NewReader(`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"outputs"`) {
				t.Fatalf("over the socket: %d %s", resp.StatusCode, b)
			}
			client.CloseIdleConnections()
			if err := ts.stop(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(sock); !os.IsNotExist(err) {
				t.Errorf("the socket outlived the server: %v", err)
			}
		})
	}
}
