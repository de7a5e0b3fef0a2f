package mgmt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/apiauth"
)

// maxAnswer bounds what the client reads of one answer: far above any
// list a local control plane holds.
const maxAnswer = 64 << 20

// ErrUnreachable wraps every failure to get an HTTP answer at all (nothing
// listening, a TLS failure, a timeout): the server never saw the request.
var ErrUnreachable = errors.New("cannot reach ferry up")

// Error is an answer of the API that is not a success. It keeps the HTTP
// status so that callers can tell "not found" from "refused".
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	if e.Status == http.StatusUnauthorized {
		return "unauthorized: " + e.Message
	}
	return e.Message
}

// IsNotFound reports whether err is the API's 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Client talks to the management API at one server. Its methods are safe
// for concurrent use.
type Client struct {
	server string
	token  string
	hc     *http.Client
}

// NewClient returns a client of the API at server (a base URL such as
// http://127.0.0.1:8090) that sends token as a bearer token when it is not
// empty, over hc (its transport carries any TLS trust); nil hc means
// http.DefaultClient.
func NewClient(server, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{server: strings.TrimRight(server, "/"), token: token, hc: hc}
}

// Server is the base URL the client talks to.
func (c *Client) Server() string { return c.server }

// Apply stores every InferenceService and TrainedModel in doc (YAML or
// JSON, one or more documents) and says what happened to each.
func (c *Client) Apply(ctx context.Context, doc []byte) ([]ApplyResult, error) {
	var out []ApplyResult
	err := c.do(ctx, http.MethodPost, Prefix+"/apply", doc, &out)
	return out, err
}

// List returns the stored objects of kind in namespace (every namespace
// when ns is empty), as the server stores them.
func (c *Client) List(ctx context.Context, kind Kind, ns string) ([]json.RawMessage, error) {
	p := Prefix + "/" + string(kind)
	if ns != "" {
		p += "?" + url.Values{"namespace": {ns}}.Encode()
	}
	var out List[json.RawMessage]
	err := c.do(ctx, http.MethodGet, p, nil, &out)
	return out.Items, err
}

// Get returns one stored object as the server stores it.
func (c *Client) Get(ctx context.Context, kind Kind, ns, name string) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.do(ctx, http.MethodGet, objectPath(kind, ns, name), nil, &out)
	return out, err
}

// InferenceService returns one InferenceService, decoded.
func (c *Client) InferenceService(ctx context.Context, ns, name string) (*api.InferenceService, error) {
	var out api.InferenceService
	if err := c.do(ctx, http.MethodGet, objectPath(InferenceServices, ns, name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TrainedModel returns one TrainedModel, decoded.
func (c *Client) TrainedModel(ctx context.Context, ns, name string) (*api.TrainedModel, error) {
	var out api.TrainedModel
	if err := c.do(ctx, http.MethodGet, objectPath(TrainedModels, ns, name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// InferenceGraph returns one InferenceGraph, decoded.
func (c *Client) InferenceGraph(ctx context.Context, ns, name string) (*api.InferenceGraph, error) {
	var out api.InferenceGraph
	if err := c.do(ctx, http.MethodGet, objectPath(InferenceGraphs, ns, name), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Delete removes one object; an InferenceService goes with its revisions
// and replicas. The server answers once the routes are gone.
func (c *Client) Delete(ctx context.Context, kind Kind, ns, name string) error {
	return c.do(ctx, http.MethodDelete, objectPath(kind, ns, name), nil, &Deleted{})
}

// Revisions lists a service's revisions, predictor first.
func (c *Client) Revisions(ctx context.Context, ns, name string) ([]Revision, error) {
	var out List[Revision]
	err := c.do(ctx, http.MethodGet, objectPath(InferenceServices, ns, name)+"/revisions", nil, &out)
	return out.Items, err
}

// Events lists a service's recent events, oldest first.
func (c *Client) Events(ctx context.Context, ns, name string) ([]Event, error) {
	var out List[Event]
	err := c.do(ctx, http.MethodGet, objectPath(InferenceServices, ns, name)+"/events", nil, &out)
	return out.Items, err
}

// Replicas returns a service's running replicas by revision.
func (c *Client) Replicas(ctx context.Context, ns, name string) (*Replicas, error) {
	var out Replicas
	if err := c.do(ctx, http.MethodGet, objectPath(InferenceServices, ns, name)+"/replicas", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LogOptions select the replicas and lines Logs returns.
type LogOptions struct {
	Component string // predictor (the server's default when empty), transformer or explainer
	Tail      int    // lines per replica; 0 means the server's default
}

// Logs returns the last lines of a component's replicas, by replica name.
func (c *Client) Logs(ctx context.Context, ns, name string, o LogOptions) (map[string][]string, error) {
	q := url.Values{}
	if o.Component != "" {
		q.Set("component", o.Component)
	}
	if o.Tail > 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	p := objectPath(InferenceServices, ns, name) + "/logs"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out Logs
	err := c.do(ctx, http.MethodGet, p, nil, &out)
	return out.Replicas, err
}

// WaitForServer waits, up to max, for a server on a loopback address
// that refuses connections, as one does for the first moments of
// `ferry up`. It returns at once for any other server or answer (the next
// request reports whatever is wrong), and says whether it had to wait: a
// server that just started may have just recorded a new token.
func (c *Client) WaitForServer(ctx context.Context, max time.Duration) (waited bool, err error) {
	u, err := url.Parse(c.server)
	if err != nil || !apiauth.IsLoopbackHost(u.Hostname()) {
		return false, nil
	}
	deadline := time.Now().Add(max)
	delay := 10 * time.Millisecond
	for {
		err := c.health(ctx)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
			return waited, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return waited, fmt.Errorf("%w at %s (nothing answered within %s): %w", ErrUnreachable, c.server, max, err)
		}
		waited = true
		t := time.NewTimer(min(delay, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return waited, ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// health asks the open /healthz route; any HTTP answer means the server
// is serving (its routes and token are in place). Its error is the
// transport's, unwrapped.
func (c *Client) health(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.server+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.Body.Close()
}

func objectPath(kind Kind, ns, name string) string {
	return Prefix + "/namespaces/" + url.PathEscape(ns) + "/" + string(kind) + "/" + url.PathEscape(name)
}

// do sends one request and decodes a success into out; any other status
// becomes *Error with the server's message.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, c.server, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e ErrorBody
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return &Error{Status: resp.StatusCode, Message: e.Error}
		}
		return &Error{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// Bounds of a models request (GET …/inferenceservices/{name}/models):
// replicas asked, time per replica, and the size of each index read.
const (
	ModelsMaxReplicas = 16
	ModelsTimeout     = 5 * time.Second
	modelsMaxBody     = 4 << 20
)

// ReplicaIndex asks the replica of revision at base, http://host:port (a
// `ferry serve` or any V2 server), for its model repository index with c,
// within a bounded time and answer size; a failure is the index's Error.
func ReplicaIndex(ctx context.Context, c *http.Client, revision, base string) ModelIndex {
	ctx, cancel := context.WithTimeout(ctx, ModelsTimeout)
	defer cancel()
	models, err := fetchRepositoryIndex(ctx, c, base, modelsMaxBody)
	if err != nil {
		return ModelIndex{Revision: revision, Models: []RepositoryModel{}, Error: err.Error()}
	}
	return ModelIndex{Revision: revision, Models: models}
}

// fetchRepositoryIndex posts the V2 repository index request to base,
// reading at most maxBody bytes of the answer.
func fetchRepositoryIndex(ctx context.Context, c *http.Client, base string, maxBody int64) ([]RepositoryModel, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v2/repository/index", strings.NewReader("{}"))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("repository index: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("repository index: %w", err)
	}
	if int64(len(body)) > maxBody {
		return nil, fmt.Errorf("repository index: answer over %d bytes", maxBody)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("repository index: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	models := []RepositoryModel{}
	if err := json.Unmarshal(body, &models); err != nil {
		return nil, fmt.Errorf("repository index: %w", err)
	}
	return models, nil
}
