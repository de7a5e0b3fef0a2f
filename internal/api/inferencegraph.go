package api

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// InferenceGraph kind and version (serving.kserve.io only: KFServing never
// had graphs).
const (
	KindInferenceGraph    = "InferenceGraph"
	VersionInferenceGraph = "v1alpha1"
)

// Router types of a graph node.
const (
	RouterSequence = "Sequence"
	RouterSwitch   = "Switch"
	RouterEnsemble = "Ensemble"
	RouterSplitter = "Splitter"
)

// Step data sources and dependencies.
const (
	DataRequest  = "$request"
	DataResponse = "$response"

	DependencySoft = "Soft"
	DependencyHard = "Hard"
)

// GraphRootNode is the node a graph's requests enter.
const GraphRootNode = "root"

var (
	routerTypes  = []string{RouterSequence, RouterSplitter, RouterEnsemble, RouterSwitch}
	stepData     = []string{DataRequest, DataResponse}
	dependencies = []string{DependencySoft, DependencyHard}
)

// InferenceGraph chains, switches, splits or ensembles InferenceServices
// behind one endpoint (serving.kserve.io/v1alpha1, KServe ≥ 0.9).
type InferenceGraph struct {
	TypeMeta
	Metadata ObjectMeta            `json:"metadata"`
	Spec     InferenceGraphSpec    `json:"spec"`
	Status   *InferenceGraphStatus `json:"status,omitempty"`
}

var _ Object = (*InferenceGraph)(nil)

// Meta implements Object.
func (g *InferenceGraph) Meta() *ObjectMeta { return &g.Metadata }

// Type implements Object.
func (g *InferenceGraph) Type() TypeMeta { return g.TypeMeta }

// InferenceGraphSpec is KServe's graph spec. Nodes and the two timeouts are
// what Ferry's ingress executes; the scheduling and scaling fields are kept
// for a Kubernetes operator (the graph runs inside the ingress, not as its
// own deployment).
type InferenceGraphSpec struct {
	Nodes map[string]InferenceRouter `json:"nodes"`
	// TimeoutSeconds bounds a whole graph request.
	TimeoutSeconds *int64                `json:"timeout,omitempty"`
	RouterTimeouts *GraphRouterTimeouts  `json:"routerTimeouts,omitempty"`
	Resources      *ResourceRequirements `json:"resources,omitempty"`
	Affinity       map[string]any        `json:"affinity,omitempty"`
	Tolerations    []map[string]any      `json:"tolerations,omitempty"`
	NodeSelector   map[string]string     `json:"nodeSelector,omitempty"`
	NodeName       string                `json:"nodeName,omitempty"`
	// ServiceAccountName is kept for the operator.
	ServiceAccountName string  `json:"serviceAccountName,omitempty"`
	MinReplicas        *int32  `json:"minReplicas,omitempty"`
	MaxReplicas        int32   `json:"maxReplicas,omitempty"`
	ScaleTarget        *int32  `json:"scaleTarget,omitempty"`
	ScaleMetric        *string `json:"scaleMetric,omitempty"`
}

// GraphRouterTimeouts are KServe's router timeouts in seconds. Ferry uses
// ServiceClient (the bound of each step's call); the server timeouts belong
// to the ingress listener and are kept only.
type GraphRouterTimeouts struct {
	ServerRead    *int64 `json:"serverRead,omitempty"`
	ServerWrite   *int64 `json:"serverWrite,omitempty"`
	ServerIdle    *int64 `json:"serverIdle,omitempty"`
	ServiceClient *int64 `json:"serviceClient,omitempty"`
}

// InferenceRouter is one node: how it runs its steps.
type InferenceRouter struct {
	RouterType string          `json:"routerType"`
	Steps      []InferenceStep `json:"steps,omitempty"`
}

// InferenceStep is one step of a node: a service, a URL or another node,
// with what it is given and how its failure counts.
type InferenceStep struct {
	Name        string `json:"name,omitempty"`
	NodeName    string `json:"nodeName,omitempty"`
	ServiceName string `json:"serviceName,omitempty"`
	ServiceURL  string `json:"serviceUrl,omitempty"`
	// Data is "$request" (the node's input) or "$response" (the previous
	// step's output, in a Sequence).
	Data string `json:"data,omitempty"`
	// MapPredictionsToInstances renames the input's "predictions" to
	// "instances" (V1 chaining).
	MapPredictionsToInstances bool `json:"mapPredictionsToInstances,omitempty"`
	// Weight is the step's percent of a Splitter's traffic.
	Weight *int64 `json:"weight,omitempty"`
	// Condition is a GJSON path: the step is taken when it selects
	// something in the input (Switch) or in the previous response
	// (Sequence).
	Condition  string `json:"condition,omitempty"`
	Dependency string `json:"dependency,omitempty"`
}

// Target names what the step calls, for messages.
func (s *InferenceStep) Target() string {
	switch {
	case s.ServiceName != "":
		return "service " + s.ServiceName
	case s.NodeName != "":
		return "node " + s.NodeName
	case s.ServiceURL != "":
		return "url " + s.ServiceURL
	}
	return "nothing"
}

// InferenceGraphStatus is the observed state of a graph.
type InferenceGraphStatus struct {
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
	URL                string      `json:"url,omitempty"`
	DeploymentMode     string      `json:"deploymentMode,omitempty"`
}

// Default implements Object. Step dependencies are left as written: their
// default depends on the node type and is applied by the executor.
func (g *InferenceGraph) Default() {
	if g.Metadata.Namespace == "" {
		g.Metadata.Namespace = DefaultNamespace
	}
}

// Validate implements Object. It checks what KServe's graph webhook checks
// (name, a root node, unique step names, one target per step, Splitter
// weights summing to 100) and, because Ferry runs the graph itself, what
// would otherwise fail at request time: unknown router types, data and
// dependency values, node references that do not exist or form a cycle, and
// service URLs that are not absolute http(s) URLs.
func (g *InferenceGraph) Validate() error {
	var errs fieldErrors
	checkMeta(&errs, &g.Metadata)
	s := &g.Spec
	if len(s.Nodes) == 0 {
		errs.add("spec.nodes", "required: a graph needs a node named %q", GraphRootNode)
	} else if _, ok := s.Nodes[GraphRootNode]; !ok {
		errs.add("spec.nodes."+GraphRootNode, "required: the graph's entry node must be named %q", GraphRootNode)
	}
	for _, name := range sortedMapKeys(s.Nodes) {
		validateGraphNode(&errs, "spec.nodes."+name, s.Nodes[name], s.Nodes)
	}
	checkGraphCycles(&errs, s.Nodes)
	if s.TimeoutSeconds != nil && *s.TimeoutSeconds <= 0 {
		errs.add("spec.timeout", "must be greater than 0, got %d", *s.TimeoutSeconds)
	}
	if t := s.RouterTimeouts; t != nil {
		for _, f := range []struct {
			name string
			v    *int64
		}{{"serverRead", t.ServerRead}, {"serverWrite", t.ServerWrite}, {"serverIdle", t.ServerIdle}, {"serviceClient", t.ServiceClient}} {
			if f.v != nil && *f.v <= 0 {
				errs.add("spec.routerTimeouts."+f.name, "must be greater than 0, got %d", *f.v)
			}
		}
	}
	if s.Resources != nil {
		validateResources(&errs, "spec.resources", s.Resources)
	}
	if s.MinReplicas != nil && *s.MinReplicas < 0 {
		errs.add("spec.minReplicas", "must be non-negative, got %d", *s.MinReplicas)
	}
	if s.MaxReplicas < 0 {
		errs.add("spec.maxReplicas", "must be non-negative, got %d", s.MaxReplicas)
	}
	if s.ScaleMetric != nil && !slices.Contains(scaleMetrics, *s.ScaleMetric) {
		errs.add("spec.scaleMetric", "unsupported value %q; supported: %s", *s.ScaleMetric, strings.Join(scaleMetrics, ", "))
	}
	return errs.err()
}

func validateGraphNode(errs *fieldErrors, p string, n InferenceRouter, nodes map[string]InferenceRouter) {
	switch {
	case n.RouterType == "":
		errs.add(p+".routerType", "required: one of %s", strings.Join(routerTypes, ", "))
	case !slices.Contains(routerTypes, n.RouterType):
		errs.add(p+".routerType", "unsupported value %q; supported: %s", n.RouterType, strings.Join(routerTypes, ", "))
	}
	if len(n.Steps) == 0 {
		errs.add(p+".steps", "required: a node needs at least one step")
	}
	seen := map[string]int{}
	weights := int64(0)
	for i, st := range n.Steps {
		sp := fmt.Sprintf("%s.steps[%d]", p, i)
		if st.Name != "" {
			if j, dup := seen[st.Name]; dup {
				errs.add(sp+".name", "duplicate step name %q (also steps[%d])", st.Name, j)
			} else {
				seen[st.Name] = i
			}
		}
		validateStepTarget(errs, sp, st, nodes)
		if st.Data != "" && !slices.Contains(stepData, st.Data) {
			errs.add(sp+".data", "unsupported value %q; supported: %s", st.Data, strings.Join(stepData, ", "))
		}
		if st.Dependency != "" && !slices.Contains(dependencies, st.Dependency) {
			errs.add(sp+".dependency", "unsupported value %q; supported: %s", st.Dependency, strings.Join(dependencies, ", "))
		}
		if st.Condition != "" {
			if err := checkConditionSyntax(st.Condition); err != "" {
				errs.add(sp+".condition", "invalid GJSON path %q: %s", st.Condition, err)
			}
		}
		if n.RouterType == RouterSwitch && st.Condition == "" {
			errs.add(sp+".condition", "required in a Switch node")
		}
		if n.RouterType == RouterSplitter {
			switch {
			case st.Weight == nil:
				errs.add(sp+".weight", "required in a Splitter node")
			case *st.Weight < 0 || *st.Weight > 100:
				errs.add(sp+".weight", "must be between 0 and 100, got %d", *st.Weight)
			default:
				weights += *st.Weight
			}
		}
	}
	if n.RouterType == RouterSplitter && len(n.Steps) > 0 && weights != 100 {
		errs.add(p+".steps", "the weights of a Splitter node must sum to 100, got %d", weights)
	}
}

func validateStepTarget(errs *fieldErrors, sp string, st InferenceStep, nodes map[string]InferenceRouter) {
	set := 0
	for _, v := range []string{st.NodeName, st.ServiceName, st.ServiceURL} {
		if v != "" {
			set++
		}
	}
	switch set {
	case 0:
		errs.add(sp, "specify one of nodeName, serviceName or serviceUrl")
		return
	case 1:
	default:
		errs.add(sp, "specify only one of nodeName, serviceName or serviceUrl")
		return
	}
	switch {
	case st.ServiceName != "":
		checkName(errs, sp+".serviceName", st.ServiceName)
	case st.NodeName != "":
		if _, ok := nodes[st.NodeName]; !ok {
			errs.add(sp+".nodeName", "no node named %q in spec.nodes", st.NodeName)
		}
	case st.ServiceURL != "":
		u, err := url.Parse(st.ServiceURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.add(sp+".serviceUrl", "invalid URL %q: want an absolute http:// or https:// URL", st.ServiceURL)
		}
	}
}

// checkGraphCycles reports a node that can reach itself through nodeName
// steps: the graph would recurse without end.
func checkGraphCycles(errs *fieldErrors, nodes map[string]InferenceRouter) {
	const (
		unvisited = iota
		active
		done
	)
	state := map[string]int{}
	var visit func(name string, path []string)
	visit = func(name string, path []string) {
		state[name] = active
		path = append(path, name)
		n := nodes[name]
		for i, st := range n.Steps {
			if st.NodeName == "" {
				continue
			}
			if _, ok := nodes[st.NodeName]; !ok {
				continue // reported by validateStepTarget
			}
			switch state[st.NodeName] {
			case active:
				start := slices.Index(path, st.NodeName)
				cycle := append(slices.Clone(path[start:]), st.NodeName)
				errs.add(fmt.Sprintf("spec.nodes.%s.steps[%d].nodeName", name, i), "cycle %s: a node cannot reach itself", strings.Join(cycle, " → "))
			case unvisited:
				visit(st.NodeName, path)
			}
		}
		state[name] = done
	}
	// From the root first, so that a cycle reads as a request would walk it.
	for _, name := range append([]string{GraphRootNode}, sortedMapKeys(nodes)...) {
		if _, ok := nodes[name]; ok && state[name] == unvisited {
			visit(name, nil)
		}
	}
}

// checkConditionSyntax catches the mistakes a GJSON path cannot recover
// from (unbalanced brackets, parentheses and quotes); the executor parses
// the rest. It returns "" or what is wrong.
func checkConditionSyntax(c string) string {
	var stack []byte
	for i := 0; i < len(c); i++ {
		switch ch := c[i]; ch {
		case '\\':
			i++
		case '"':
			j := i + 1
			for ; j < len(c) && c[j] != '"'; j++ {
				if c[j] == '\\' {
					j++
				}
			}
			if j >= len(c) {
				return "unterminated string"
			}
			i = j
		case '(', '[', '{':
			stack = append(stack, ch)
		case ')', ']', '}':
			open := map[byte]byte{')': '(', ']': '[', '}': '{'}[ch]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return fmt.Sprintf("unbalanced %q at offset %d", ch, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Sprintf("unclosed %q", stack[len(stack)-1])
	}
	return ""
}
