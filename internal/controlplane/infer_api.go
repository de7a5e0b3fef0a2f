package controlplane

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/ferryserve/ferry/internal/apiauth"
	"github.com/ferryserve/ferry/internal/console"
	"github.com/ferryserve/ferry/internal/router"
)

// The test-request route of the management API (the web console's form):
//
//	POST /api/v1/namespaces/{ns}/inferenceservices/{name}/infer?protocol=v1|v2&verb=predict|explain[&model=M]
//
// It forwards the body, unchanged, to the service through the ingress's
// router in-process, as a client with Host {name}.{ns}.{domain} would send
// it to /v1/models/{model}:{verb} or /v2/models/{model}/infer|explain
// (model defaults to the service's name): traffic splits, the activator,
// concurrency limits, request loggers and the per-revision metrics all
// apply. A browser holding the management token thus reaches a model
// without a second credential or a cross-origin call to the ingress.
//
// The answer is the model's status and body, with the revision that
// answered in Ferry-Revision. A model's 401 or 403 would read as the
// management guard refusing the token, so they become 502 naming them.
func (a *APIServer) inferRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/namespaces/{ns}/inferenceservices/{name}/infer", a.infer)
}

// inferMaxAnswer bounds the answer held in memory for one test request.
const inferMaxAnswer = 8 << 20

func (a *APIServer) infer(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	path, err := console.InferPath(r.URL.Query(), name)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	if _, err := a.ctl.InferenceService(ns, name); errors.Is(err, ErrNotFound) {
		writeErr(w, http.StatusNotFound, err)
		return
	} else if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	if a.ctl.cfg.Router == nil {
		writeErr(w, http.StatusServiceUnavailable, errors.New("this server has no ingress router"))
		return
	}
	body, err := io.ReadAll(r.Body) // bounded by the guard's --api-max-body
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		apiauth.TooLarge(w, tooBig.Limit, "--api-max-body")
		return
	}
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("read request body: %w", err))
		return
	}
	ans := a.forward(r, ns, name, path, body)
	if ans.over {
		writeErr(w, http.StatusBadGateway, fmt.Errorf("the answer of %s/%s is over %d bytes", ns, name, inferMaxAnswer))
		return
	}
	if ans.status == http.StatusUnauthorized || ans.status == http.StatusForbidden {
		writeErr(w, http.StatusBadGateway, fmt.Errorf("%s/%s answered %d: %s", ns, name, ans.status, bytes.TrimSpace(ans.buf.Bytes())))
		return
	}
	h := w.Header()
	for _, k := range []string{"Content-Type", router.HeaderRevision} {
		if v := ans.header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	w.WriteHeader(ans.status)
	_, _ = w.Write(ans.buf.Bytes())
}

// forward sends one request through the router in-process, with the
// inbound request's context (a closed tab cancels it).
func (a *APIServer) forward(r *http.Request, ns, name, path string, body []byte) *answerBuffer {
	host := name + "." + ns + "." + a.ctl.cfg.Domain
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, "http://"+host+path, bytes.NewReader(body))
	req.Host = host
	req.RemoteAddr = "127.0.0.1:0" // the management API, inside ferry up
	req.Header.Set("Content-Type", "application/json")
	ans := &answerBuffer{header: http.Header{}}
	a.ctl.cfg.Router.ServeHTTP(ans, req)
	if ans.status == 0 {
		ans.status = http.StatusOK
	}
	return ans
}

// answerBuffer collects the router's answer up to inferMaxAnswer bytes.
type answerBuffer struct {
	header http.Header
	status int
	buf    bytes.Buffer
	over   bool
}

func (b *answerBuffer) Header() http.Header { return b.header }

func (b *answerBuffer) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *answerBuffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.buf.Len()+len(p) > inferMaxAnswer {
		b.over = true
		return 0, fmt.Errorf("answer over %d bytes", inferMaxAnswer)
	}
	return b.buf.Write(p)
}
