package controlplane

import (
	"net"
	"strings"
	"testing"
)

func TestHopSocket(t *testing.T) {
	dir := t.TempDir()
	c := &Controller{cfg: Config{DataDir: dir}}
	p := c.httpSocket(41234)
	if p != dir+"/sock/http-41234.sock" {
		t.Fatalf("socket path %q", p)
	}
	if got := c.HopSocket("127.0.0.1:41234"); got != "" {
		t.Errorf("no replica listens yet, but the hop is sent to %q", got)
	}
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := c.HopSocket("127.0.0.1:41234"); got != p {
		t.Errorf("HopSocket = %q, want %q", got, p)
	}
	for _, addr := range []string{"10.0.0.1:41234", "127.0.0.1:41235", "nonsense"} {
		if got := c.HopSocket(addr); got != "" {
			t.Errorf("HopSocket(%q) = %q, want none", addr, got)
		}
	}
	long := &Controller{cfg: Config{DataDir: dir + "/" + strings.Repeat("d", 100)}}
	if got := long.httpSocket(41234); got != "" {
		t.Errorf("a path too long for a socket: %q", got)
	}
	if got := (&Controller{}).httpSocket(41234); got != "" {
		t.Errorf("no data directory: %q", got)
	}
}
