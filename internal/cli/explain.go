package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/explain"
	"github.com/ferryserve/ferry/internal/explain/treeshap"
	"github.com/ferryserve/ferry/internal/repository"
	"github.com/ferryserve/ferry/internal/runtime"
	"github.com/ferryserve/ferry/internal/storage"
)

// explainOptions are ferry serve's explainer flags (KServe's explainer
// arguments: type, config entries, storage URI, predictor host).
type explainOptions struct {
	typ           string
	config        []string
	data          string
	predictorHost string
}

func (o *explainOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.typ, "explainer-type", "", "serve :explain with a built-in explainer: TreeShap, KernelShap, AnchorTabular, AnchorText, AnchorImages, LimeTabular or LimeImages (empty: none)")
	f.StringArrayVar(&o.config, "explainer-config", nil, "explainer config entry key=value (Alibi's keys, e.g. threshold=0.9); repeatable; unknown keys are refused")
	f.StringVar(&o.data, "explainer-data", "", "training data for the explainer: a JSON file, or a directory or storage URI holding "+explain.DataFile)
	f.StringVar(&o.predictorHost, "predictor-host", "", "explain by calling this predictor over V1 (host[:port] or URL) instead of the model served here")
}

// middleware builds the explain middleware, or nil when no explainer is
// configured. Configuration errors name the flag and the key.
func (o *explainOptions) middleware(ctx context.Context, repo *repository.Repository, store *storage.Puller, maxBody int64, timeout time.Duration, log *slog.Logger) (func(http.Handler) http.Handler, error) {
	if o.typ == "" {
		if len(o.config) > 0 || o.data != "" || o.predictorHost != "" {
			return nil, fmt.Errorf("--explainer-config, --explainer-data and --predictor-host need --explainer-type")
		}
		return nil, nil
	}
	cfgMap, err := explain.ParseConfig(o.config)
	if err != nil {
		return nil, fmt.Errorf("--explainer-config: %w", err)
	}
	opts := explain.Options{Type: o.typ, Config: cfgMap}
	if o.data != "" && explain.IsText(o.typ) {
		// KServe mounts Alibi's explainer.dill there; AnchorText perturbs
		// the text itself and reads no training data.
		log.Info("explainer data not read: AnchorText needs none", "explainer_data", o.data)
	} else if o.data != "" {
		path := o.data
		if strings.Contains(path, "://") && !strings.HasPrefix(path, "file://") {
			if path, err = store.Pull(ctx, o.data); err != nil {
				return nil, fmt.Errorf("--explainer-data: %w", err)
			}
		}
		if opts.Data, err = explain.LoadData(strings.TrimPrefix(path, "file://")); err != nil {
			return nil, fmt.Errorf("--explainer-data: %w", err)
		}
	}
	cfg := explain.Config{Options: opts}
	if o.predictorHost != "" {
		client := &http.Client{Timeout: 600 * time.Second} // KServe's explainer timeout
		cfg.Predictor = func(name string) explain.Predictor { return explain.V1Predictor(client, o.predictorHost, name) }
		cfg.TextPredictor = func(name string) explain.TextPredictor { return explain.V1TextPredictor(client, o.predictorHost, name) }
		cfg.ImagePredictor = func(name string) explain.ImagePredictor {
			return explain.V1ImagePredictor(client, o.predictorHost, name)
		}
	} else {
		cfg.Lend = func(name string) explain.LendFunc {
			return func() (runtime.Model, func(), error) {
				h, err := repo.Acquire(name, "")
				if err != nil {
					return nil, nil, err
				}
				return h.Model, h.Release, nil
			}
		}
		cfg.Predictor = func(name string) explain.Predictor { return explain.ModelPredictor(name, cfg.Lend(name)) }
	}
	x, err := explain.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("--explainer-type %s: %w", o.typ, err)
	}
	log.Info("explainer ready", "type", o.typ, "predictor_host", o.predictorHost)
	return explain.NewHandler(x, maxBody, timeout, log).Middleware, nil
}

// checkLoaded refuses, once the models are loaded, a TreeShap explainer
// none of whose models has trees: the error names the flag and the model,
// and ends the server (under ferry up the explainer's condition shows it).
// A model among several that cannot be explained is logged.
func (o *explainOptions) checkLoaded(repo *repository.Repository, log *slog.Logger) func(context.Context) error {
	if o.typ != explain.TypeTreeShap || o.predictorHost != "" {
		return nil
	}
	return func(context.Context) error {
		var errs []error
		names := repo.Names()
		for _, name := range names {
			h, err := repo.Acquire(name, "")
			if err != nil {
				continue // not loaded: its load error is logged already
			}
			_, err = treeshap.FromModel(h.Model)
			h.Release()
			if err != nil {
				err = fmt.Errorf("--explainer-type TreeShap: model %q: %w", name, err)
				log.Error("model cannot be explained", "err", err)
				errs = append(errs, err)
			}
		}
		if len(names) > 0 && len(errs) == len(names) {
			return errors.Join(errs...)
		}
		return nil
	}
}

// standalone reports whether the explainer calls a remote predictor, so
// that ferry serve may run with no model of its own and serve only
// :explain (KServe's explainer component).
func (o *explainOptions) standalone() bool {
	return o.typ != "" && o.predictorHost != ""
}
