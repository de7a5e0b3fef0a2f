package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/ferryserve/ferry/internal/api"
)

// Services is the Runner's view of the control plane: read services,
// apply a changed one through the same path `ferry apply` takes, and
// record an event that `ferry describe` shows.
type Services interface {
	List(ctx context.Context) ([]*api.InferenceService, error)
	Apply(ctx context.Context, isvc *api.InferenceService) error
	Event(namespace, name, typ, reason, message string)
}

// Config configures a Runner.
type Config struct {
	Services Services
	Metrics  Source
	// Quality reads revisions' accuracy for accuracy-drop objectives;
	// nil: a policy with one is reported invalid.
	Quality QualitySource
	// Tick is how often services are examined (default 1s); each
	// policy's interval decides when a step is judged.
	Tick   time.Duration
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Runner moves canaries of services with a rollout policy.
type Runner struct {
	cfg Config
}

// NewRunner returns a Runner; Run starts it.
func NewRunner(cfg Config) *Runner {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Runner{cfg: cfg}
}

// Run examines every service each Tick until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Tick)
	defer t.Stop()
	for {
		if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.Warn("rollout pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync makes one pass over every service.
func (r *Runner) Sync(ctx context.Context) error {
	list, err := r.cfg.Services.List(ctx)
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	var errs []error
	for _, isvc := range list {
		if err := r.syncOne(ctx, isvc); err != nil {
			errs = append(errs, fmt.Errorf("%s/%s: %w", isvc.Metadata.Namespace, isvc.Metadata.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) syncOne(ctx context.Context, isvc *api.InferenceService) error {
	md := &isvc.Metadata
	pol, err := ParsePolicy(md.Annotations)
	if err != nil {
		r.cfg.Services.Event(md.Namespace, md.Name, "Warning", "RolloutPolicyInvalid", err.Error())
		return nil // the event says it; nothing to retry until the spec changes
	}
	if pol == nil || isvc.Status == nil {
		return nil
	}
	cs := isvc.Status.Components[api.ComponentPredictor]
	latest, stable := cs.LatestCreatedRevision, cs.LatestRolledoutRevision
	st, has, err := ReadState(md.Annotations)
	if err != nil {
		r.cfg.Services.Event(md.Namespace, md.Name, "Warning", "RolloutStateInvalid", err.Error()+"; starting over")
		has = false
	}
	now := r.cfg.Now()
	switch {
	case latest == "" || stable == "":
		return nil // first revision: nothing to compare with
	case latest == stable:
		if has && st.Phase == PhaseProgressing && st.Revision == latest {
			// Rolled out by someone else (canaryTrafficPercent removed by
			// hand): record it.
			st.Phase, st.LastAction, st.Reason, st.Updated = PhasePromoted, Promote, "rolled out outside the rollout", now
			return r.write(ctx, isvc, st, nil)
		}
		return nil
	case !has || st.Revision != latest:
		return r.start(ctx, isvc, pol, latest, stable, now)
	case st.Phase != PhaseProgressing:
		return nil
	}
	if md.Annotations[AnnotationAbort] == "true" {
		d := Decision{Action: Rollback, Percent: 0, Reason: "aborted by ferry rollout abort"}
		return r.apply(ctx, isvc, pol, st, d, Observation{Canary: Metrics{}}, now)
	}
	if md.Annotations[AnnotationPaused] == "true" {
		return nil
	}
	obs := Observation{}
	if obs.Canary, err = r.cfg.Metrics.Query(ctx, md.Namespace, st.Revision, st.StepStarted, now); err != nil {
		r.cfg.Services.Event(md.Namespace, md.Name, "Warning", "RolloutMetricsUnavailable", err.Error())
		return fmt.Errorf("canary metrics: %w", err)
	}
	if pol.CompareStable {
		m, err := r.cfg.Metrics.Query(ctx, md.Namespace, st.Stable, st.StepStarted, now)
		if err != nil {
			r.cfg.Services.Event(md.Namespace, md.Name, "Warning", "RolloutMetricsUnavailable", err.Error())
			return fmt.Errorf("stable metrics: %w", err)
		}
		obs.Stable = &m
	}
	if metrics := pol.QualityMetrics(); metrics != nil {
		if r.cfg.Quality == nil {
			r.cfg.Services.Event(md.Namespace, md.Name, "Warning", "RolloutPolicyInvalid", "quality objectives need quality monitoring, which this control plane does not read")
			return nil
		}
		for _, x := range []struct {
			rev string
			dst **Quality
		}{{st.Revision, &obs.CanaryQuality}, {st.Stable, &obs.StableQuality}} {
			q, ok, err := r.cfg.Quality.Quality(ctx, md.Namespace, md.Name, x.rev, metrics)
			if err != nil {
				r.cfg.Services.Event(md.Namespace, md.Name, "Warning", "RolloutMetricsUnavailable", err.Error())
				return fmt.Errorf("quality of %s: %w", x.rev, err)
			}
			if ok {
				*x.dst = &q
			}
		}
	}
	d := Decide(pol, st, obs, now)
	r.cfg.Logger.Debug("rollout decision", "service", md.Namespace+"/"+md.Name, "canary", st.Revision, "action", d.Action, "reason", d.Reason)
	if d.Action == Hold {
		return nil
	}
	return r.apply(ctx, isvc, pol, st, d, obs, now)
}

// start gives a new latest revision the first step.
func (r *Runner) start(ctx context.Context, isvc *api.InferenceService, pol *Policy, latest, stable string, now time.Time) error {
	st := State{Revision: latest, Stable: stable, Step: 0, Percent: pol.Steps[0], StepStarted: now, Phase: PhaseProgressing,
		LastAction: Advance, Reason: fmt.Sprintf("new revision %s: first step", latest), Updated: now}
	pct := int64(st.Percent)
	isvc.Spec.Predictor.CanaryTrafficPercent = &pct
	delete(isvc.Metadata.Annotations, AnnotationAbort)
	delete(isvc.Metadata.Annotations, AnnotationRolledBack) // it told of an earlier canary
	if err := r.write(ctx, isvc, st, nil); err != nil {
		return err
	}
	r.event(isvc, "Normal", "RolloutStarted", fmt.Sprintf("canary %s at %d%% (stable %s); steps %v every %s", latest, st.Percent, stable, pol.Steps, pol.Interval))
	return nil
}

// apply carries out a decision that changes the canary.
func (r *Runner) apply(ctx context.Context, isvc *api.InferenceService, pol *Policy, st State, d Decision, obs Observation, now time.Time) error {
	prev := st.Percent
	st.LastAction, st.Reason, st.Updated = d.Action, d.Reason, now
	c := obs.Canary
	st.Canary, st.StableM = &c, obs.Stable
	st.CanaryQuality, st.StableQuality = obs.CanaryQuality, obs.StableQuality
	ext := &isvc.Spec.Predictor.ComponentExtensionSpec
	var extra map[string]string
	typ, reason, msg := "Normal", "", ""
	switch d.Action {
	case Advance:
		st.Step++
		st.Percent, st.StepStarted = d.Percent, now
		pct := int64(d.Percent)
		ext.CanaryTrafficPercent = &pct
		reason, msg = "RolloutAdvanced", fmt.Sprintf("canary %s: %d%% → %d%%: %s", st.Revision, prev, d.Percent, d.Reason)
	case Promote:
		st.Percent, st.Phase = 100, PhasePromoted
		ext.CanaryTrafficPercent = nil // KFServing: no canary percent, the latest revision takes all traffic
		reason, msg = "RolloutPromoted", fmt.Sprintf("canary %s promoted: %s", st.Revision, d.Reason)
	case Rollback:
		st.Percent, st.Phase = 0, PhaseRolledBack
		zero := int64(0)
		ext.CanaryTrafficPercent = &zero // KFServing: all traffic to the last rolled-out revision
		typ, reason = "Warning", "RolloutRolledBack"
		msg = fmt.Sprintf("canary %s rolled back to %s: %s", st.Revision, st.Stable, d.Reason)
		extra = map[string]string{AnnotationRolledBack: msg}
	default:
		return fmt.Errorf("decision %q changes nothing", d.Action)
	}
	delete(isvc.Metadata.Annotations, AnnotationAbort)
	if err := r.write(ctx, isvc, st, extra); err != nil {
		return err
	}
	r.event(isvc, typ, reason, msg)
	return nil
}

func (r *Runner) write(ctx context.Context, isvc *api.InferenceService, st State, extra map[string]string) error {
	ann := maps.Clone(isvc.Metadata.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	maps.Copy(ann, extra)
	ann[AnnotationState] = st.encode()
	isvc.Metadata.Annotations = ann
	if err := r.cfg.Services.Apply(ctx, isvc); err != nil {
		return fmt.Errorf("apply rollout step: %w", err)
	}
	return nil
}

func (r *Runner) event(isvc *api.InferenceService, typ, reason, msg string) {
	r.cfg.Services.Event(isvc.Metadata.Namespace, isvc.Metadata.Name, typ, reason, msg)
	r.cfg.Logger.Info("rollout", "service", isvc.Metadata.Namespace+"/"+isvc.Metadata.Name, "reason", reason, "message", msg)
}
