package router

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
)

// Annotations that set a service's A/B routing (the control plane reads
// them from the InferenceService).
const (
	// AnnotationAffinity makes a client stick to one revision of a split:
	// "cookie" (the ingress sets a cookie naming the revision it drew),
	// "header:NAME" or "cookie:NAME" (a client's own id, hashed into a
	// bucket: the same id always lands on the same revision, and raising the
	// canary's share only moves clients onto the canary, never back).
	AnnotationAffinity = "serving.ferryserve.io/affinity"
	// AnnotationRouteRules route matching requests to a tag, before any
	// split: "header:X-Group=beta=>latest; cookie:exp=b=>prev".
	AnnotationRouteRules = "serving.ferryserve.io/route-rules"
	// HeaderTag names a tag per request, as Knative's tag-header routing.
	HeaderTag = "Knative-Serving-Tag"
)

// Affinity is a service's A/B routing.
type Affinity struct {
	// Mode: "" (a fresh draw per request), "cookie" (Ferry's cookie), or
	// "key" (a hash of Header or Cookie).
	Mode           string
	Header, Cookie string
	Rules          []MatchRule
}

// MatchRule sends requests whose header or cookie equals Value to Tag.
type MatchRule struct {
	Header, Cookie, Value, Tag string
}

// ParseAffinity reads the two annotations; errors name the annotation and
// the form it takes.
func ParseAffinity(annotations map[string]string) (*Affinity, error) {
	mode, rules := annotations[AnnotationAffinity], annotations[AnnotationRouteRules]
	if mode == "" && rules == "" {
		return nil, nil
	}
	a := &Affinity{}
	switch kind, name, _ := strings.Cut(strings.TrimSpace(mode), ":"); {
	case mode == "":
	case kind == "cookie" && name == "":
		a.Mode = "cookie"
	case (kind == "header" || kind == "cookie") && validToken(name):
		a.Mode = "key"
		if kind == "header" {
			a.Header = http.CanonicalHeaderKey(name)
		} else {
			a.Cookie = name
		}
	default:
		return nil, fmt.Errorf("metadata.annotations[%s]: %q: want cookie, header:NAME or cookie:NAME", AnnotationAffinity, mode)
	}
	for _, r := range strings.Split(rules, ";") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		m, err := parseRule(r)
		if err != nil {
			return nil, fmt.Errorf("metadata.annotations[%s]: %q: %w", AnnotationRouteRules, r, err)
		}
		a.Rules = append(a.Rules, m)
	}
	return a, nil
}

var errRuleForm = errors.New("want header:NAME=VALUE=>TAG or cookie:NAME=VALUE=>TAG (TAG: latest, prev or a traffic tag)")

func parseRule(r string) (MatchRule, error) {
	match, tag, ok := strings.Cut(r, "=>")
	tag = strings.TrimSpace(tag)
	if !ok || tag == "" {
		return MatchRule{}, errRuleForm
	}
	kind, rest, ok := strings.Cut(strings.TrimSpace(match), ":")
	name, value, ok2 := strings.Cut(rest, "=")
	if !ok || !ok2 || !validToken(name) || value == "" {
		return MatchRule{}, errRuleForm
	}
	switch kind {
	case "header":
		return MatchRule{Header: http.CanonicalHeaderKey(name), Value: value, Tag: tag}, nil
	case "cookie":
		return MatchRule{Cookie: name, Value: value, Tag: tag}, nil
	}
	return MatchRule{}, errRuleForm
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// StickyCookie is the name of the cookie Ferry sets in "cookie" mode.
func StickyCookie(ns, name string) string { return "ferry-rev-" + ns + "-" + name }

func cookieValue(req *http.Request, name string) string {
	if c, err := req.Cookie(name); err == nil {
		return c.Value
	}
	return ""
}

// requestTag is the tag a request asks for (Knative's tag header) or a
// route rule gives it; "" when neither.
func (a *Affinity) requestTag(req *http.Request) string {
	if t := req.Header.Get(HeaderTag); t != "" {
		return t
	}
	if a == nil {
		return ""
	}
	for _, r := range a.Rules {
		switch {
		case r.Header != "" && req.Header.Get(r.Header) == r.Value:
			return r.Tag
		case r.Cookie != "" && cookieValue(req, r.Cookie) == r.Value:
			return r.Tag
		}
	}
	return ""
}

// sticky picks a target of a split for a client that has one; nil: draw.
func (a *Affinity) sticky(req *http.Request, svc *Service, c *Component) *Target {
	if a == nil || len(c.Targets) < 2 {
		return nil
	}
	switch a.Mode {
	case "cookie":
		rev := cookieValue(req, StickyCookie(svc.Namespace, svc.Name))
		for i := range c.Targets {
			if rev != "" && c.Targets[i].Revision == rev && c.Targets[i].Percent > 0 {
				return &c.Targets[i]
			}
		}
	case "key":
		id := req.Header.Get(a.Header)
		if a.Cookie != "" {
			id = cookieValue(req, a.Cookie)
		}
		if id == "" {
			return nil
		}
		h := fnv.New32a()
		h.Write([]byte(svc.Namespace + "/" + svc.Name + "/" + id))
		return byBucket(c, int(h.Sum32()%100))
	}
	return nil
}

// byBucket maps a bucket in [0, 100) onto the targets' cumulative shares.
func byBucket(c *Component, n int) *Target {
	for i := range c.Targets {
		n -= c.Targets[i].Percent
		if n < 0 {
			return &c.Targets[i]
		}
	}
	return &c.Targets[len(c.Targets)-1]
}
