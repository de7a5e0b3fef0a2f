package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// kserveExplainerFlags maps the arguments KServe's controller gives an
// explainer container to ferry serve's flags. They are global: accepted
// before and after the type, since ferry up appends them after a custom
// container's own arguments.
var kserveExplainerFlags = map[string]string{
	"model_name":     "--model-name",
	"http_port":      "--http-port",
	"grpc_port":      "--grpc-port",
	"predictor_host": "--predictor-host",
	"storage_uri":    "--explainer-data",
}

// newExplainCmd is ferry serve as a stand-alone explainer, taking KServe's
// explainer arguments: --model_name NAME --http_port PORT --predictor_host
// HOST [--storage_uri URI] TYPE [--key value ...].
func newExplainCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "explain [--model_name NAME] [--http_port PORT] [--predictor_host HOST] [--storage_uri URI] [ferry serve flags] TYPE [--key value ...]",
		Short: "Serve :explain for a predictor elsewhere, with KServe's explainer arguments",
		Long: `Run a built-in explainer (TreeShap, KernelShap, AnchorTabular or AnchorText) that serves
POST /v1/models/NAME:explain and POST /v2/models/NAME/explain and calls the
predictor over V1, as KServe's explainer images do. It takes the arguments
KServe's controller gives an explainer container: --model_name, --http_port,
--predictor_host and --storage_uri (the training data: explainer.json), the
type, then every config entry as --key value. Flags of ferry serve
(--host, --log-format, storage settings, --model-dir for TreeShap in process)
may come before the type. The gRPC listener takes a free port unless
--grpc_port is given.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
				return cmd.Help()
			}
			serveArgs, err := kserveExplainerArgs(args)
			if err != nil {
				return err
			}
			serve := newServeCmd()
			serve.SetOut(cmd.OutOrStdout())
			serve.SetErr(cmd.ErrOrStderr())
			serve.SetContext(cmd.Context())
			if err := serve.ParseFlags(serveArgs); err != nil {
				return fmt.Errorf("explain: %w", err)
			}
			return serve.RunE(serve, nil)
		},
	}
}

// kserveExplainerArgs turns KServe's explainer arguments into ferry serve
// flags. Every word after the type is a config entry (--key value, or
// --key=value; a key with no value is "true"), except KServe's global
// arguments; no argument is dropped.
func kserveExplainerArgs(args []string) ([]string, error) {
	out := []string{"--grpc-port", "0"} // later flags win: --grpc_port overrides
	typ := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			if typ != "" {
				return nil, fmt.Errorf("explain: unexpected argument %q after the type %s (config entries are --key value)", a, typ)
			}
			typ = a
			out = append(out, "--explainer-type", typ)
			continue
		}
		key, val, hasVal := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !hasVal && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") && (typ != "" || isFlagWithValue(key)) {
			i++
			val, hasVal = args[i], true
		}
		if flag, ok := kserveExplainerFlags[key]; ok {
			if !hasVal {
				return nil, fmt.Errorf("explain: --%s needs a value", key)
			}
			out = append(out, flag, val)
			continue
		}
		switch {
		case typ != "":
			if !hasVal {
				val = "true"
			}
			out = append(out, "--explainer-config", key+"="+val)
		case hasVal:
			out = append(out, "--"+key, val) // a ferry serve flag
		default:
			out = append(out, "--"+key)
		}
	}
	if typ == "" {
		return nil, fmt.Errorf("explain: give the explainer type (TreeShap, KernelShap, AnchorTabular or AnchorText) after the global arguments")
	}
	return out, nil
}

// isFlagWithValue reports whether a flag before the type takes a value:
// KServe's globals and every ferry serve flag that is not a boolean.
func isFlagWithValue(name string) bool {
	if _, ok := kserveExplainerFlags[name]; ok {
		return true
	}
	f := newServeCmd().Flags().Lookup(name)
	return f == nil || f.Value.Type() != "bool"
}
