// Package browsertest drives the web console in a headless chromium for
// tests (Debian's chromium; the test skips without it): a browser of the
// test's own that records every error the page reports, and a bounded
// wait on a condition evaluated in the page.
package browsertest

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Timeout bounds each Wait.
const Timeout = 45 * time.Second

// ChromiumPath finds chromium on PATH, or skips the test saying how to
// install it.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not found: the console's browser tests need Debian's chromium (apt-get install chromium; .ci/run installs it)")
	return ""
}

// Start starts a headless chromium of the test's own, stopped when the
// test ends, and returns its context and a function listing what the
// page reported as errors so far (uncaught exceptions, console.error,
// CSP violations and failed loads from the browser log).
func Start(t testing.TB) (context.Context, func() []string) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	var mu sync.Mutex
	var errs []string
	messages := chromedp.Console(ctx) // subscribes now: nothing the page says is lost
	var reading sync.WaitGroup
	reading.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				errs = append(errs, m.String()+" ("+m.URL+")")
				mu.Unlock()
			}
		}
	})
	t.Cleanup(func() { cancel(); cancelAlloc(); reading.Wait() })
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), errs...)
	}
}

// Wait evaluates expr in the page until it returns true, for at most
// Timeout, and on timeout fails the test with what the page shows.
func Wait(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || errors.Is(err, context.Canceled) {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("timed out waiting in the console for %s (err %v); the page said:\n%s", what, err, text)
		}
		time.Sleep(100 * time.Millisecond) // bounded poll of the page
	}
}
