package apiauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// Record is what a client needs to talk to one `ferry up`: its URL, its
// token and, when it serves a self-signed certificate, that certificate.
type Record struct {
	Server string `json:"server"`
	Token  string `json:"token"`
	// CAPEM is the PEM certificate to trust for Server; empty for plain
	// HTTP or a certificate the system already trusts.
	CAPEM string `json:"caPEM,omitempty"`
	// DataDir is where the server keeps its state (for the user's eyes).
	DataDir string `json:"dataDir,omitempty"`
}

// Registry keeps one Record per server address, each in its own 0600 file
// under a 0700 directory of the user's config dir (so two `ferry up` with
// their own --data-dir never overwrite each other's token).
type Registry struct {
	Dir string
}

// DefaultRegistry is the registry under the user's config directory
// ($XDG_CONFIG_HOME/ferry/servers or ~/.config/ferry/servers).
func DefaultRegistry() (Registry, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return Registry{}, fmt.Errorf("find the user config dir for api tokens: %w", err)
	}
	return Registry{Dir: filepath.Join(d, "ferry", "servers")}, nil
}

// Save records rec under every key of its server address.
func (r Registry) Save(rec Record, keys ...string) error {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", r.Dir, err)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := writeFileAtomic(filepath.Join(r.Dir, k+".json"), b, 0o600); err != nil {
			return fmt.Errorf("save api token for %s: %w", rec.Server, err)
		}
	}
	return nil
}

// Lookup returns the record saved for the server at serverURL.
func (r Registry) Lookup(serverURL string) (Record, bool, error) {
	k, err := KeyForURL(serverURL)
	if err != nil {
		return Record{}, false, err
	}
	b, err := os.ReadFile(filepath.Join(r.Dir, k+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("read api token record: %w", err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, false, fmt.Errorf("api token record %s: %w", filepath.Join(r.Dir, k+".json"), err)
	}
	return rec, true, nil
}

// KeyForURL names the record of a server URL: the host and port, with every
// loopback name (localhost, 127.0.0.0/8, ::1) folded into "localhost".
func KeyForURL(serverURL string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("server %q is not a URL like http://127.0.0.1:8090", serverURL)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return keyFor(u.Hostname(), port), nil
}

// KeysForListener names the records under which a server listening on addr
// (a resolved listener address) is reachable from this machine: a wildcard
// listener is reachable by loopback and by the host's name.
func KeysForListener(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsUnspecified() {
		keys := []string{keyFor("localhost", port)}
		if hn, err := os.Hostname(); err == nil && hn != "" {
			keys = append(keys, keyFor(hn, port))
		}
		return keys
	}
	return []string{keyFor(host, port)}
}

func keyFor(host, port string) string {
	if IsLoopbackHost(host) {
		host = "localhost"
	}
	// Keep file names to a safe alphabet: IPv6 colons and dots become '_'.
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			return r
		}
		return '_'
	}, strings.ToLower(host))
	return clean + "_" + port
}

// IsLoopbackHost reports whether host (a name or IP, without port) names
// this machine's loopback interface.
func IsLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
