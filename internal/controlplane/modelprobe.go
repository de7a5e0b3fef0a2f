package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// modelProber asks predictor replicas whether a TrainedModel is loaded,
// off the reconcile path: a reconcile reads the last answer and queues a
// fresh probe; when an answer changes, onChange queues the TrainedModel
// pass again. A replica that does not answer costs its own probe's
// timeout, never the pass or another model's status.
type modelProber struct {
	client   *http.Client
	timeout  time.Duration
	onChange func()
	sem      chan struct{} // bounds probes in flight

	mu       sync.Mutex
	results  map[string]probeResult // by ns/model
	inflight map[string]bool
	wg       sync.WaitGroup
}

type probeResult struct {
	backends string // the replicas asked, so a change of replicas asks again
	loaded   bool
	why      string
	at       time.Time
}

// reaskLoaded is how long a "loaded" answer stands before the same
// replicas are asked again (a "not loaded" one is asked again every pass):
// with many TrainedModels the steady state is not a probe per model per
// second.
const reaskLoaded = 10 * time.Second

func newModelProber(onChange func()) *modelProber {
	return &modelProber{
		client: http.DefaultClient, timeout: 2 * time.Second, onChange: onChange,
		sem: make(chan struct{}, 8), results: map[string]probeResult{}, inflight: map[string]bool{},
	}
}

// loaded returns the last answer for model (key ns/name) on backends and
// starts a new probe unless one is running. Until a probe of these
// backends has answered it reports "checking".
func (p *modelProber) loaded(ctx context.Context, key, model string, backends []string) (bool, string) {
	if len(backends) == 0 {
		p.mu.Lock()
		delete(p.results, key)
		p.mu.Unlock()
		return false, "no ready predictor replica"
	}
	set := strings.Join(slices.Sorted(slices.Values(backends)), ",")
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.results[key]
	fresh := ok && r.backends == set && r.loaded && time.Since(r.at) < reaskLoaded
	if !fresh && !p.inflight[key] && ctx.Err() == nil {
		p.inflight[key] = true
		p.wg.Add(1)
		go p.probe(ctx, key, model, set, slices.Clone(backends)) // owned: wait() joins it
	}
	if !ok || r.backends != set {
		return false, "checking whether the predictor has loaded the model"
	}
	return r.loaded, r.why
}

func (p *modelProber) probe(ctx context.Context, key, model, set string, backends []string) {
	defer p.wg.Done()
	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.inflight, key)
		p.mu.Unlock()
		return
	}
	r := probeResult{backends: set, loaded: true}
	for _, be := range backends {
		if ok, why := p.ask(ctx, be, model); !ok {
			r.loaded, r.why = false, why
			break
		}
	}
	r.at = time.Now()
	p.mu.Lock()
	old, had := p.results[key]
	p.results[key] = r
	delete(p.inflight, key)
	p.mu.Unlock()
	changed := !had || old.backends != r.backends || old.loaded != r.loaded || old.why != r.why
	if changed && ctx.Err() == nil {
		p.onChange()
	}
}

// ask is one replica's answer to V2 model readiness.
func (p *modelProber) ask(ctx context.Context, backend, model string) (bool, string) {
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, "http://"+backend+"/v2/models/"+model+"/ready", nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is the replica's, named already
		}
		return false, fmt.Sprintf("replica %s: %v", backend, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("replica %s: model not ready (%d)", backend, resp.StatusCode)
	}
	return true, ""
}

// forget drops what is known of models not in keep (deleted ones).
func (p *modelProber) forget(keep map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.results {
		if !keep[k] {
			delete(p.results, k)
		}
	}
}

// wait returns when every probe has ended (their ctx ended first).
func (p *modelProber) wait() { p.wg.Wait() }
