package cli

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/apiauth"
	"github.com/ferryserve/ferry/internal/server"
)

// serveSecurityOptions are ferry serve's flags for who may manage its
// models and how slowly clients may send.
type serveSecurityOptions struct {
	repoAPI   bool
	repoToken string
	bodyGrace time.Duration
	bodyRate  int64
	flags     *pflag.FlagSet
}

func (s *serveSecurityOptions) addFlags(f *pflag.FlagSet) {
	s.flags = f
	f.BoolVar(&s.repoAPI, "enable-repository-api", false, "serve the V2 repository API (index, load, unload); default: on only when --host is loopback (or --repository-api-token is set)")
	f.StringVar(&s.repoToken, "repository-api-token", "", "require this bearer token for repository API calls (env FERRY_REPOSITORY_API_TOKEN)")
	f.DurationVar(&s.bodyGrace, "body-read-timeout", server.DefaultBodyGrace, "time a request body may take before --min-body-rate applies (slow-client defence)")
	f.Int64Var(&s.bodyRate, "min-body-rate", server.DefaultBodyMinRate, "slowest request body accepted after --body-read-timeout, in bytes per second")
}

// configure sets cfg's repository-API policy and body-rate bound for a
// server bound to host.
func (s *serveSecurityOptions) configure(cfg *server.Config, host string, log *slog.Logger) error {
	if s.bodyRate <= 0 || s.bodyGrace <= 0 {
		return fmt.Errorf("--min-body-rate and --body-read-timeout must be positive")
	}
	cfg.BodyRate = server.BodyRate{Grace: s.bodyGrace, MinRate: s.bodyRate}
	enabled := apiauth.IsLoopbackHost(host) || s.repoToken != ""
	if s.flags != nil && s.flags.Changed("enable-repository-api") {
		enabled = s.repoAPI
	}
	cfg.RepositoryAPI = server.RepositoryAPI{Disabled: !enabled, Token: s.repoToken}
	switch {
	case !enabled:
		log.Info("repository API off (not on loopback); --enable-repository-api turns it on")
	case s.repoToken == "" && !apiauth.IsLoopbackHost(host):
		log.Warn("repository API open to the network without a token: anyone who can reach the port can unload models; set --repository-api-token", "host", host)
	}
	return nil
}
