// Package cli owns Ferry's command line: the subcommands, their flags, and
// how flags are also read from environment variables and a config file.
package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "dev"

// Main runs the ferry command with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Ferry serves machine-learning models over KServe's V1 and V2 protocols",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(), newUpCmd(), newAgentCmd(), newPullCmd(), newVersionCmd())
	root.AddCommand(newClientCmds()...)
	root.AddCommand(newDetectCmd())
	root.AddCommand(newRolloutCmd())
	root.AddCommand(newOperatorCmd(), newRouterCmd())
	root.AddCommand(newConsoleCmd())
	root.AddCommand(newExplainCmd())
	root.AddCommand(newFairnessCmd())
	root.AddCommand(newAttackCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "ferry:", err)
		return 1
	}
	return 0
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Ferry's version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "ferry", Version)
		},
	}
}

// applyEnvAndConfig fills every flag the user did not set on the command
// line, first from FERRY_<FLAG> environment variables (dashes become
// underscores, e.g. FERRY_HTTP_PORT), then from the YAML/JSON file named by
// --config (keys are flag names, e.g. "http-port: 9000").
func applyEnvAndConfig(fs *pflag.FlagSet, configPath string) error {
	file := map[string]any{}
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			return fmt.Errorf("config file %s: %w", configPath, err)
		}
		for k := range file {
			if fs.Lookup(k) == nil {
				return fmt.Errorf("config file %s: unknown key %q (keys are flag names, e.g. http-port)", configPath, k)
			}
		}
	}
	var firstErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || firstErr != nil || f.Name == "config" {
			return
		}
		env := "FERRY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				firstErr = fmt.Errorf("environment variable %s: %w", env, err)
			}
			return
		}
		if v, ok := file[f.Name]; ok {
			if err := fs.Set(f.Name, fmt.Sprint(v)); err != nil {
				firstErr = fmt.Errorf("config file %s: key %s: %w", configPath, f.Name, err)
			}
		}
	})
	return firstErr
}

// newLogger returns the one logger of a command. Format "auto" is text on
// a terminal (read by a person) and JSON otherwise (read by a program or
// kept in a file). JSON renders durations as Go duration strings ("1.5s"),
// not slog's raw nanoseconds, so the `took` of a load or pull reads the
// same in both formats and in `ferry logs`.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "text"
		}
	}
	switch format {
	case "json":
		opts.ReplaceAttr = durationStrings
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want auto, json or text", format)
}

func durationStrings(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
