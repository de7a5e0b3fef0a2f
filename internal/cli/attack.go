package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ferryserve/ferry/internal/attack"
)

type attackOptions struct {
	host          string
	port          int
	modelName     string
	predictorHost string
	protocol      string
	inputName     string
	datatype      string
	storageURI    string
	maxBody       int64
	maxInstances  int
	timeout       time.Duration
	logLevel      string
	logFormat     string
	config        string
}

// attackKeys are ART's config keys, each a flag of its own (KServe passes
// an explainer block's config as --key value).
var attackKeys = []string{"nb_classes", "max_iter", "eps", "norm", "batch_size", "clip_min", "clip_max", "clip_values",
	"channels_first", "seed", "verbose", "p_init", "nb_restarts", "max_eval", "init_eval", "init_size", "targeted",
	"adv_criterion", "loss"}

func newAttackCmd() *cobra.Command {
	o := &attackOptions{}
	keys := map[string]*string{}
	cmd := &cobra.Command{
		Use:   "attack [SquareAttack|HopSkipJump] --predictor-host HOST --model-name NAME [--eps E --max_iter N ...]",
		Short: "Serve ART's black-box adversarial attacks as KFServing's art explainer does",
		Long: `Serve SquareAttack (score-based, inside an L-inf or L2 ball of radius eps) or
HopSkipJump (decision-based, minimal L2 or L-inf distance) against a predictor
that speaks KServe's V1 (default) or V2 protocol, as KFServing's art-explainer
does. POST /v1/models/{name}:explain (or /v2/models/{name}/explain) with
{"instances": [inputs, [label]]} answers {"explanations": {"adversarial_example",
"L2 error", "adversarial_prediction", "prediction", "success", "queries", ...}}.

ART's config keys are flags of their own, in KServe's spelling or with dashes:
--nb_classes, --max_iter, --eps, --norm (inf or 2), --batch_size, --clip_values
min,max, --p_init, --nb_restarts (SquareAttack), --max_eval, --init_eval,
--init_size (HopSkipJump). A key an attack does not honour is refused by name.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := applyEnvAndConfig(cmd.Flags(), o.config); err != nil {
				return err
			}
			typ := attack.TypeSquareAttack
			if len(args) == 1 {
				typ = args[0]
			}
			kv := map[string]string{}
			for k, v := range keys {
				if cmd.Flags().Changed(strings.ReplaceAll(k, "_", "-")) {
					kv[k] = *v
				}
			}
			cfg, err := attack.ParseConfig(typ, kv)
			if err != nil {
				return err
			}
			return runAttack(cmd.Context(), o, cfg, cmd)
		},
	}
	f := cmd.Flags()
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	f.StringVar(&o.host, "host", "", "address to listen on (empty: all)")
	f.IntVar(&o.port, "http-port", 8080, "port for the explain API and health")
	f.StringVar(&o.modelName, "model-name", "model", "the {name} in the explain paths, and the predictor's model name")
	f.StringVar(&o.predictorHost, "predictor-host", "", "predictor to attack: host:port or a base URL (required)")
	f.StringVar(&o.protocol, "predictor-protocol", attack.ProtocolV1, "v1 or v2")
	f.StringVar(&o.inputName, "predictor-input-name", "input-0", "v2: the input's name")
	f.StringVar(&o.datatype, "predictor-datatype", "FP32", "v2: the input's datatype (FP32 or FP64)")
	f.StringVar(&o.storageURI, "storage-uri", "", "accepted for KServe compatibility; an attack needs no files")
	f.Int64Var(&o.maxBody, "max-body-bytes", 8<<20, "largest request body accepted (413 beyond)")
	f.IntVar(&o.maxInstances, "max-instances", 100, "most instances in one request")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound on one request's attack (504 beyond)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.logFormat, "log-format", "json", "json or text")
	f.StringVar(&o.config, "config", "", "YAML file of flag values (keys are flag names)")
	for _, k := range attackKeys {
		keys[k] = f.String(strings.ReplaceAll(k, "_", "-"), "", "ART config key "+k+" (see docs/trust.md)")
	}
	return cmd
}

func runAttack(ctx context.Context, o *attackOptions, cfg attack.Config, cmd *cobra.Command) error {
	log, err := newLogger(cmd.ErrOrStderr(), o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	if o.predictorHost == "" {
		return errors.New("--predictor-host is required")
	}
	if o.protocol != attack.ProtocolV1 && o.protocol != attack.ProtocolV2 {
		return fmt.Errorf("--predictor-protocol %q: want v1 or v2", o.protocol)
	}
	if o.datatype != "FP32" && o.datatype != "FP64" {
		return fmt.Errorf("--predictor-datatype %q: want FP32 or FP64", o.datatype)
	}
	h := attack.NewHandler(attack.HandlerConfig{
		Model: o.modelName, Attack: cfg,
		Predictor: attack.Predictor{Client: &http.Client{}, Protocol: o.protocol, Host: o.predictorHost,
			Model: o.modelName, InputName: o.inputName, Datatype: o.datatype},
		MaxBodyBytes: o.maxBody, MaxInstances: o.maxInstances, Timeout: o.timeout, Logger: log,
	})
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort(o.host, strconv.Itoa(o.port)))
	if err != nil {
		return fmt.Errorf("attack: listen: %w", err)
	}
	// Requests run under base, cancelled once shutdown has waited for
	// them, so no attack outlives the command.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return base }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("attack explainer listening", "addr", ln.Addr().String(), "model", o.modelName, "type", cfg.Type,
		"norm", cfg.Norm.String(), "eps", cfg.Eps, "max_iter", cfg.MaxIter, "predictor", o.predictorHost, "protocol", o.protocol)
	select {
	case err := <-errc:
		return fmt.Errorf("attack: serve: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shut)
	cancelBase()
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
