package cli

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/apiauth"
	"github.com/ferryserve/ferry/internal/console"
	"github.com/ferryserve/ferry/internal/puller"
)

// apiSecurityOptions are ferry up's flags for its management API's
// credentials, transport and limits.
type apiSecurityOptions struct {
	maxBody string
	tlsCert string
	tlsKey  string
}

func (a *apiSecurityOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&a.maxBody, "api-max-body", "32Mi", "largest request the management API accepts (ferry apply of many manifests); larger ones get 413")
	f.StringVar(&a.tlsCert, "api-tls-cert", "", "TLS certificate for the management API (with --api-tls-key); required in effect on a non-loopback --api-addr, where a self-signed one is generated when not given")
	f.StringVar(&a.tlsKey, "api-tls-key", "", "TLS private key for --api-tls-cert")
}

// apiSecurity is the management API's listener (TLS where needed), its
// guard and its URL.
type apiSecurity struct {
	listener net.Listener
	guard    apiauth.Guard
	url      string
}

// setUp creates or loads the token under dataDir, records it for this
// user's CLI, wraps ln in TLS when the API is reachable beyond loopback (or
// a certificate is given), and warns loudly on a non-loopback address.
func (a apiSecurityOptions) setUp(ln net.Listener, dataDir string, log *slog.Logger, stderr io.Writer) (apiSecurity, error) {
	maxBody, err := puller.ParseQuantity(a.maxBody)
	if err != nil || maxBody <= 0 {
		return apiSecurity{}, fmt.Errorf("--api-max-body %q: want a size such as 32Mi", a.maxBody)
	}
	if (a.tlsCert == "") != (a.tlsKey == "") {
		return apiSecurity{}, fmt.Errorf("--api-tls-cert and --api-tls-key go together: give both or neither")
	}
	tok, err := apiauth.LoadOrCreateToken(dataDir)
	if err != nil {
		return apiSecurity{}, err
	}
	addr := ln.Addr().String()
	host, port, _ := net.SplitHostPort(addr)
	loopback := apiauth.IsLoopbackHost(host)
	sec := apiSecurity{
		listener: ln,
		guard: apiauth.Guard{Token: tok, LoopbackOnly: loopback, MaxBody: maxBody, MaxBodyFlag: "--api-max-body",
			Open: append([]string{"GET /healthz", "GET /metrics", "GET " + console.RevisionMetricsPath}, console.OpenRoutes()...)},
	}
	var mat apiauth.TLSMaterial
	switch {
	case a.tlsCert != "":
		if mat, err = apiauth.LoadTLS(a.tlsCert, a.tlsKey); err != nil {
			return apiSecurity{}, err
		}
	case !loopback:
		var hosts []string
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			hosts = append(hosts, host)
		}
		if hn, err := os.Hostname(); err == nil {
			hosts = append(hosts, hn)
		}
		if mat, err = apiauth.SelfSignedTLS(dataDir, hosts, time.Now()); err != nil {
			return apiSecurity{}, err
		}
	}
	scheme := "http"
	if mat.CertPEM != nil {
		scheme = "https"
		sec.listener = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{mat.Cert}, MinVersion: tls.VersionTLS12})
	}
	urlHost := host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		urlHost = "127.0.0.1"
	}
	sec.url = scheme + "://" + net.JoinHostPort(urlHost, port)
	if !loopback {
		fmt.Fprintf(stderr, "WARNING: the management API listens on %s, beyond this machine's loopback.\n"+
			"It can start processes as this user. Every request needs the token in %s/%s;\n"+
			"TLS certificate SHA-256 fingerprint: %s\n", addr, dataDir, apiauth.TokenFile, mat.Fingerprint)
		log.Warn("management API is reachable from the network", "addr", addr, "tls_sha256", mat.Fingerprint, "self_signed", mat.SelfSigned)
	}
	rec := apiauth.Record{Server: sec.url, Token: tok, DataDir: dataDir}
	if mat.SelfSigned {
		rec.CAPEM = string(mat.CertPEM)
	}
	reg, err := apiauth.DefaultRegistry()
	if err == nil {
		err = reg.Save(rec, apiauth.KeysForListener(addr)...)
	}
	if err != nil {
		// The CLI can still use --token or FERRY_TOKEN.
		log.Warn("could not record the api token for the CLI", "err", err)
	}
	return sec, nil
}
