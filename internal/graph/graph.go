// Package graph executes KServe InferenceGraphs: a request enters the root
// node and flows through Sequence, Switch, Ensemble and Splitter nodes whose
// steps call InferenceServices (through a Caller) or other nodes. It owns
// the graph's request semantics (data passing, conditions, weights,
// dependencies, errors naming the failing step); it knows nothing of how a
// service is reached, which the Caller decides.
package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/ferryserve/ferry/internal/api"
)

// Caller sends one request to an InferenceService and returns its answer.
// A non-2xx status is an answer, not an error; err is for requests that got
// no answer (cancelled, timed out, unreachable, body over the Caller's
// limit). Call must honour ctx and must not keep body or hdr after it
// returns; it may be called from several goroutines at once.
type Caller interface {
	Call(ctx context.Context, namespace, service, path string, body []byte, hdr http.Header) (status int, respBody []byte, err error)
}

// Target is what a service step calls: a service and the path on it.
type Target struct {
	Namespace string
	Service   string
	Path      string
}

// Resolver maps a step that names a service (serviceName or serviceUrl) to
// its Target; it wraps ErrServiceNotFound when the service does not exist.
type Resolver func(step api.InferenceStep) (Target, error)

// ErrServiceNotFound is wrapped by resolvers when a step's service does not
// exist.
var ErrServiceNotFound = errors.New("service not found")

// CompileError is a graph that cannot run; Path is the field at fault, as
// validation errors name it.
type CompileError struct {
	Path string
	Err  error
}

func (e *CompileError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *CompileError) Unwrap() error { return e.Err }

// Graph is a compiled InferenceGraph, immutable and safe to share.
type Graph struct {
	Namespace string
	Name      string
	nodes     map[string]*node
	// timeout bounds a whole request (spec.timeout), stepTimeout each
	// service call (spec.routerTimeouts.serviceClient); 0 = none.
	timeout     time.Duration
	stepTimeout time.Duration
}

type node struct {
	name  string
	typ   string
	steps []step
	total int // sum of Splitter weights
}

type step struct {
	label     string // name, or steps[i]
	key       string // Ensemble result key: name, or the index
	node      string // a nested node, or
	target    Target // a service
	useResp   bool   // data: $response
	mapPreds  bool
	cond      *Condition
	weight    int
	hard      bool
	targetMsg string
}

// Compile checks a validated graph against the world (resolve) and
// prepares it to run. Every step's service must resolve and every
// condition parse; the first problem is returned as a *CompileError.
func Compile(ig *api.InferenceGraph, resolve Resolver) (*Graph, error) {
	g := &Graph{Namespace: ig.Metadata.Namespace, Name: ig.Metadata.Name, nodes: map[string]*node{}}
	if t := ig.Spec.TimeoutSeconds; t != nil && *t > 0 {
		g.timeout = time.Duration(*t) * time.Second
	}
	if rt := ig.Spec.RouterTimeouts; rt != nil && rt.ServiceClient != nil && *rt.ServiceClient > 0 {
		g.stepTimeout = time.Duration(*rt.ServiceClient) * time.Second
	}
	if _, ok := ig.Spec.Nodes[api.GraphRootNode]; !ok {
		return nil, &CompileError{Path: "spec.nodes." + api.GraphRootNode, Err: errors.New("required")}
	}
	for name, n := range ig.Spec.Nodes {
		cn := &node{name: name, typ: n.RouterType}
		for i, s := range n.Steps {
			p := fmt.Sprintf("spec.nodes.%s.steps[%d]", name, i)
			cs := step{label: s.Name, key: s.Name, node: s.NodeName, useResp: s.Data == api.DataResponse,
				mapPreds: s.MapPredictionsToInstances, targetMsg: s.Target()}
			if cs.label == "" {
				cs.label = fmt.Sprintf("steps[%d]", i)
				cs.key = fmt.Sprint(i)
			}
			switch s.Dependency {
			case api.DependencyHard:
				cs.hard = true
			case "":
				// KServe stops only at Hard steps; Ferry makes a failing
				// step stop a Sequence, Switch or Splitter unless it is
				// marked Soft, so that an error is never fed to the next
				// model. An Ensemble keeps KServe's Soft default.
				cs.hard = n.RouterType != api.RouterEnsemble
			}
			if s.Weight != nil {
				cs.weight = int(*s.Weight)
				cn.total += cs.weight
			}
			if s.Condition != "" {
				c, err := ParseCondition(s.Condition)
				if err != nil {
					return nil, &CompileError{Path: p + ".condition", Err: err}
				}
				cs.cond = c
			}
			switch {
			case s.NodeName != "":
				if _, ok := ig.Spec.Nodes[s.NodeName]; !ok {
					return nil, &CompileError{Path: p + ".nodeName", Err: fmt.Errorf("no node named %q", s.NodeName)}
				}
			default:
				t, err := resolve(s)
				if err != nil {
					field := ".serviceName"
					if s.ServiceName == "" {
						field = ".serviceUrl"
					}
					return nil, &CompileError{Path: p + field, Err: err}
				}
				cs.target = t
			}
			cn.steps = append(cn.steps, cs)
		}
		if len(cn.steps) == 0 {
			return nil, &CompileError{Path: "spec.nodes." + name + ".steps", Err: errors.New("required")}
		}
		if cn.typ == api.RouterSplitter && cn.total <= 0 {
			return nil, &CompileError{Path: "spec.nodes." + name + ".steps", Err: errors.New("a Splitter needs positive weights")}
		}
		g.nodes[name] = cn
	}
	if err := checkCycles(g); err != nil {
		return nil, err
	}
	return g, nil
}

// checkCycles refuses graphs whose nodes reach themselves (validation
// already does; a Graph must never recurse without end whoever built it).
func checkCycles(g *Graph) error {
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string) error
	visit = func(name string) error {
		state[name] = 1
		for i, s := range g.nodes[name].steps {
			if s.node == "" {
				continue
			}
			switch state[s.node] {
			case 1:
				return &CompileError{Path: fmt.Sprintf("spec.nodes.%s.steps[%d].nodeName", name, i), Err: fmt.Errorf("cycle through node %q", s.node)}
			case 0:
				if err := visit(s.node); err != nil {
					return err
				}
			}
		}
		state[name] = 2
		return nil
	}
	for name := range g.nodes {
		if state[name] == 0 {
			if err := visit(name); err != nil {
				return err
			}
		}
	}
	return nil
}

// Services returns every service the graph calls, for the control plane's
// bookkeeping.
func (g *Graph) Services() []Target {
	var out []Target
	for _, n := range g.nodes {
		for _, s := range n.steps {
			if s.node == "" {
				out = append(out, s.target)
			}
		}
	}
	return out
}
