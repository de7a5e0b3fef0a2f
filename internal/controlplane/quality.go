package controlplane

import (
	"path/filepath"
	"slices"
	"strconv"

	"github.com/ferryserve/ferry/internal/api"
	"github.com/ferryserve/ferry/internal/quality"
	"github.com/ferryserve/ferry/internal/supervisor"
)

// AnnotationQuality ("true") turns model quality monitoring on for an
// InferenceService's predictor: its ferry serve replicas journal every
// answered prediction and take feedback (docs/quality.md). It is read when
// a revision's replicas are first started, so set it before applying the
// revisions it should cover; a change reaches running revisions when ferry
// up restarts.
const AnnotationQuality = quality.Annotation

// withQuality adds the quality flags to the replicas of a revision that
// runs as ferry serve, when the service asks for quality monitoring. The
// replicas of one revision share DATA/quality/NS/NAME/REVISION-CREATED
// and each takes its own replica-N slot in it (--quality-replica-slots),
// so a restarted replica finds its journal again. The creation time keeps
// a service deleted and applied again (its revision names start over)
// from inheriting the old revisions' predictions.
func (c *Controller) withQuality(isvc *api.InferenceService, rev Revision, tmpl ProcessTemplate) ProcessTemplate {
	on, _ := strconv.ParseBool(isvc.Metadata.Annotations[AnnotationQuality])
	if !on {
		return tmpl
	}
	revision := rev.Name
	dir := filepath.Join(c.cfg.DataDir, "quality", isvc.Metadata.Namespace, isvc.Metadata.Name, revision+"-"+strconv.FormatInt(rev.Created.Unix(), 10))
	return func(hp, gp int) supervisor.Config {
		cfg := tmpl(hp, gp)
		if cfg.Command != c.cfg.FerryBinary || len(cfg.Args) == 0 || cfg.Args[0] != "serve" {
			return cfg // a container's own server: it has no journal
		}
		cfg.Args = append(slices.Clone(cfg.Args), "--quality-dir", dir, "--quality-replica-slots", "--quality-revision", revision)
		return cfg
	}
}
