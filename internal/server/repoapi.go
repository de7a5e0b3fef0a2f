package server

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	v2 "github.com/ferryserve/ferry/internal/protocol/v2"
)

// RepositoryAPI governs the V2 model repository extension (index, load,
// unload over REST and gRPC): whoever can call it can take a model out of
// service.
type RepositoryAPI struct {
	// Disabled refuses every repository call with 403 / PermissionDenied.
	Disabled bool
	// Token, if set, must come as "Authorization: Bearer TOKEN" (REST) or
	// the authorization metadata (gRPC).
	Token string
}

const repoDisabled = "the model repository API is off on this server: start ferry serve with --enable-repository-api " +
	"(on by default only when bound to loopback) and preferably --repository-api-token"

func (p RepositoryAPI) allow(auth string) (bool, string) {
	if p.Disabled {
		return false, repoDisabled
	}
	if p.Token == "" {
		return true, ""
	}
	tok, _ := strings.CutPrefix(auth, "Bearer ")
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(p.Token)) != 1 {
		return false, "the model repository API needs its token: send Authorization: Bearer <--repository-api-token>"
	}
	return true, ""
}

func (p RepositoryAPI) wrapHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/repository/") && r.Method == http.MethodPost {
			if ok, msg := p.allow(r.Header.Get("Authorization")); !ok {
				code := http.StatusForbidden
				if !p.Disabled {
					code = http.StatusUnauthorized
				}
				v2.WriteJSON(w, code, map[string]string{"error": msg})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (p RepositoryAPI) interceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, "/inference.GRPCInferenceService/Repository") {
		auth := ""
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get("authorization"); len(v) > 0 {
				auth = v[0]
			}
		}
		if ok, msg := p.allow(auth); !ok {
			code := codes.PermissionDenied
			if !p.Disabled {
				code = codes.Unauthenticated
			}
			return nil, status.Error(code, msg)
		}
	}
	return h(ctx, req)
}
