// Package router is the ingress of `ferry up`: it maps a request to an
// InferenceService (by Host header, or by the model name in the path), to a
// component (explainer for :explain, else transformer if present, else
// predictor), to a revision (by the traffic split or a tag host), and to a
// ready replica, and proxies it there. The control plane publishes routes
// with Update; the router never calls the control plane.
package router

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Component names.
const (
	Predictor   = "predictor"
	Transformer = "transformer"
	Explainer   = "explainer"
)

// Target is one revision receiving a share of a component's traffic.
type Target struct {
	Revision string
	// Tag names the target for tag routing ("prev", "latest"); optional.
	Tag string
	// Percent of untagged traffic; the percents of a component sum to 100
	// (targets at 0 % are reachable only by tag).
	Percent int
	// Backends are the ready replicas' HTTP addresses ("127.0.0.1:PORT").
	Backends []string
	// GRPCBackends are the same replicas' gRPC addresses.
	GRPCBackends []string
	// Latest marks the latest ready revision (reachable as "latest-").
	Latest bool
	// Concurrency is containerConcurrency: at most this many requests per
	// ready replica run at once (0 = unlimited); more wait in a bounded
	// queue, and past it are refused with 503.
	Concurrency int
}

// Component is the routing state of one component of a service.
type Component struct {
	Targets []Target
	// Timeout bounds a request to this component (0 = none).
	Timeout time.Duration
	// Middleware, if set, wraps the proxying of every request (the control
	// plane's request logger for components that do not log themselves).
	Middleware func(http.Handler) http.Handler
	// MiddlewareID changes when Middleware is replaced (funcs cannot be
	// compared), so an unchanged route is not published again.
	MiddlewareID string
}

// Service is the routing state of one InferenceService.
type Service struct {
	Name       string
	Namespace  string
	Components map[string]*Component // by component name
	// Aliases are other model names the service serves (its TrainedModels),
	// for routing by path.
	Aliases []string
	// Affinity is its A/B routing (sticky clients, match rules); nil: a
	// fresh draw per request.
	Affinity *Affinity
}

// Table is an immutable snapshot of every route.
type Table struct {
	// Domain is the ingress domain: hosts are {name}.{namespace}.{domain}.
	Domain   string
	Services []*Service
}

// Validate checks that every component's percents sum to 100.
func (t *Table) Validate() error {
	for _, s := range t.Services {
		for name, c := range s.Components {
			sum := 0
			for _, tg := range c.Targets {
				if tg.Percent < 0 {
					return fmt.Errorf("service %s/%s %s: negative percent for %s", s.Namespace, s.Name, name, tg.Revision)
				}
				sum += tg.Percent
			}
			if len(c.Targets) > 0 && sum != 100 {
				return fmt.Errorf("service %s/%s %s: percents sum to %d, want 100", s.Namespace, s.Name, name, sum)
			}
		}
	}
	return nil
}

type key struct{ ns, name string }

// index is a Table prepared for lookups.
type index struct {
	domain   string
	services map[key]*Service
	// byName finds a service by name alone when it is unique across
	// namespaces (path routing without a Host header).
	byName map[string][]*Service
	// revs holds each target's counters and limiter (filled by Update).
	revs map[*Target]*revState
}

func newIndex(t *Table) *index {
	ix := &index{domain: t.Domain, services: map[key]*Service{}, byName: map[string][]*Service{}, revs: map[*Target]*revState{}}
	for _, s := range t.Services {
		ix.services[key{s.Namespace, s.Name}] = s
		ix.byName[s.Name] = append(ix.byName[s.Name], s)
		for _, a := range s.Aliases {
			if a != s.Name {
				ix.byName[a] = append(ix.byName[a], s)
			}
		}
	}
	return ix
}

// hostRoute parses "{tag-}{name}.{namespace}.{domain}[:port]"; the tag is
// "prev" or "latest" when the host carries one.
func (ix *index) hostRoute(host string) (svc *Service, tag string, ok bool) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.ToLower(host)
	rest, found := strings.CutSuffix(host, "."+ix.domain)
	if !found {
		return nil, "", false
	}
	name, ns, found := strings.Cut(rest, ".")
	if !found || strings.Contains(ns, ".") {
		return nil, "", false
	}
	if s, ok := ix.services[key{ns, name}]; ok {
		return s, "", true
	}
	for _, t := range []string{"prev", "latest"} {
		if n, ok := strings.CutPrefix(name, t+"-"); ok {
			if s, ok := ix.services[key{ns, n}]; ok {
				return s, t, true
			}
		}
	}
	return nil, "", false
}

// pathModel extracts the model name from a V1 or V2 inference path.
func pathModel(path string) (name string, explain bool) {
	if rest, ok := strings.CutPrefix(path, "/v1/models/"); ok {
		seg, _, _ := strings.Cut(rest, "/")
		if i := strings.LastIndexByte(seg, ':'); i >= 0 {
			return seg[:i], seg[i+1:] == "explain"
		}
		return seg, false
	}
	if rest, ok := strings.CutPrefix(path, "/v2/models/"); ok {
		seg, tail, _ := strings.Cut(rest, "/")
		return seg, tail == "explain"
	}
	return "", false
}
