package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryserve/ferry/internal/console"
	"github.com/ferryserve/ferry/internal/mgmt"
)

// printConsoleURL tells the person who started ferry up where its console
// is, token included (in the fragment, which the browser never sends), as
// Jupyter does. It goes to stdout, apart from the logs on stderr, so that
// logs shipped elsewhere do not carry the token.
func printConsoleURL(w io.Writer, sec apiSecurity) {
	fmt.Fprintf(w, "Console: %s\n", console.URL(sec.url, sec.guard.Token))
}

// newConsoleCmd is `ferry console`: the console URL of a running ferry up,
// with the token this user's CLI has for it.
func newConsoleCmd() *cobra.Command {
	var server, token string
	var wait time.Duration
	var open bool
	c := &client{http: &http.Client{Timeout: 30 * time.Second}}
	cmd := &cobra.Command{
		Use:     "console",
		Aliases: []string{"ui"},
		Short:   "Print (or --open) the web console's URL of a running ferry up",
		Long: `Print the URL of the web console of a running ferry up, with the API token
in the URL's fragment (#token=...): the browser keeps the fragment to itself,
and the page keeps the token in the tab's session storage. The token is the
one ferry up recorded for this user (or --token / FERRY_TOKEN).

Treat the URL like the token: whoever has it can change what ferry up runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.start(cmd.Context(), server, token, wait); err != nil {
				return err
			}
			if c.token == "" {
				return fmt.Errorf("no API token for %s: pass --token or FERRY_TOKEN (the token is in the server's --data-dir, file api-token)", server)
			}
			// A wrong token would give a page that can only ask for another.
			if _, err := c.api.List(cmd.Context(), mgmt.InferenceServices, ""); err != nil {
				return unreachableHint(err)
			}
			u := console.URL(c.server, c.token)
			fmt.Fprintln(cmd.OutOrStdout(), u)
			if open {
				return openBrowser(cmd.Context(), u)
			}
			return nil
		},
	}
	addServerFlag(cmd, &server, &token, &wait)
	cmd.Flags().BoolVar(&open, "open", false, "also open the URL in the desktop's browser")
	return cmd
}

// openBrowser hands u to the desktop's opener. The URL is an argument,
// never a shell string.
func openBrowser(ctx context.Context, u string) error {
	var name string
	var args []string
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler"}
	default:
		name = "xdg-open"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, name, append(args, u)...).Run(); err != nil {
		return fmt.Errorf("open the browser with %s: %w (open the URL above by hand)", name, err)
	}
	return nil
}
