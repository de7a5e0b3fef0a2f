package controlplane

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// maxSocketPath is the longest Unix socket path Linux accepts (108 bytes
// with the terminating NUL), less a margin.
const maxSocketPath = 100

// httpSocket is the Unix socket a `ferry serve` replica with HTTP port
// port also serves HTTP on (--http-socket), so that the ingress reaches it
// without loopback TCP; "" where there is none (no data directory, or a
// path too long for a socket).
func (c *Controller) httpSocket(port int) string {
	if c.cfg.DataDir == "" {
		return ""
	}
	dir := filepath.Join(c.cfg.DataDir, "sock")
	p := filepath.Join(dir, "http-"+strconv.Itoa(port)+".sock")
	if len(p) > maxSocketPath {
		return ""
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return ""
	}
	return p
}

// HopSocket returns the Unix socket of the replica whose HTTP address is
// addr, for the router's hop; "" where there is none. A replica that does
// not serve one (an explainer, a custom container, or a socket left by a
// replica that died) makes the dial fail, and the router dials TCP.
func (c *Controller) HopSocket(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		return ""
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return ""
	}
	p := c.httpSocket(n)
	if p == "" {
		return ""
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode()&os.ModeSocket == 0 {
		return ""
	}
	return p
}
