package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ferryserve/ferry/internal/console/browsertest"
)

// consoleURL asks `ferry console` for the console URL of u, with the
// token this user's CLI has recorded for it.
func (u *upProcess) consoleURL(t *testing.T, bin string) string {
	t.Helper()
	out := strings.TrimSpace(u.ferryCLI(t, bin, "console"))
	tok, err := os.ReadFile(filepath.Join(u.data, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	if want := u.api + "/ui/#token=" + strings.TrimSpace(string(tok)); out != want {
		t.Fatalf("ferry console printed %q, want %q", out, want)
	}
	return out
}

// TestConsoleAssetsAndAuthOnFerryUp checks, without a browser, that a
// real ferry up serves the console's files without a token and with its
// security headers, while the API behind it still wants the token.
func TestConsoleAssetsAndAuthOnFerryUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up")
	}
	bin := buildFerry(t)
	u := startUp(t, bin, filepath.Join(t.TempDir(), "data"), 0, 0, 0)
	u.consoleURL(t, bin) // waits for the server, too
	for _, p := range []string{"/ui", "/ui/", "/ui/app.js", "/ui/style.css"} {
		resp, err := http.Get(u.api + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("GET %s without a token: %d %s", p, resp.StatusCode, body)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
			resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("GET %s: security headers %v", p, resp.Header)
		}
	}
	for _, p := range []string{"/api/v1/inferenceservices", "/ui/not-a-file"} {
		resp, err := http.Get(u.api + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET %s without a token: %d, want 401", p, resp.StatusCode)
		}
	}
}

const consoleIrisV1 = `apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris
  annotations:
    serving.ferryserve.io/rollout-steps: "50,100"
    serving.ferryserve.io/rollout-interval: 1h
    serving.ferryserve.io/rollout-min-requests: "1000000"
spec:
  predictor:
%s    sklearn:
      storageUri: file://%s
%s`

// TestConsoleInBrowser opens the console of a real ferry up in headless
// chromium: the service turns Ready on the page without a reload, a
// canary's traffic split and request rate appear, and the Pause button
// pauses the rollout.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ferry up and chromium")
	}
	ctx, pageErrors := browsertest.Start(t)
	bin := buildFerry(t)
	model, _ := filepath.Abs("../../examples/models/sklearn-iris")
	tdir := t.TempDir()
	u := startUp(t, bin, filepath.Join(tdir, "data"), 0, 0, 0)
	url := u.consoleURL(t, bin)

	// Without the token the page asks for it and calls no API.
	if err := chromedp.Do(ctx, chromedp.Navigate(u.api+"/ui")); err != nil {
		t.Fatalf("open %s: %v", u.api+"/ui", err)
	}
	browsertest.Wait(t, ctx, "the token form", `!document.getElementById("token-form").hidden && document.getElementById("services").children.length === 0`)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", u.api+"/ui/", err)
	}
	// The token left the address bar for sessionStorage.
	browsertest.Wait(t, ctx, "the token to leave the URL", `location.hash === "" && sessionStorage.getItem("ferry.token") !== null`)
	browsertest.Wait(t, ctx, "the empty list", `document.getElementById("status").textContent.startsWith("0 services")`)

	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "v1.yaml", fmt.Sprintf(consoleIrisV1, "", model, "")))
	const svc = `document.getElementById("svc-default-iris")`
	browsertest.Wait(t, ctx, "iris Ready", svc+`?.querySelector(".ready")?.dataset.ready === "True"`)

	// The Models panel reads the replica's repository index.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#svc-default-iris details.models > summary`))); err != nil {
		t.Fatalf("open the models panel: %v", err)
	}
	browsertest.Wait(t, ctx, "iris READY in the models panel", svc+`?.querySelector('details.models tr[data-model="iris"]')?.dataset.state === "READY"`)

	// Revision 2 is the canary; the rollout runner moves it to 50 %.
	u.ferryCLI(t, bin, "apply", "-f", writeYAML(t, tdir, "v2.yaml",
		fmt.Sprintf(consoleIrisV1, "    canaryTrafficPercent: 0\n", model, "      env: [{name: V, value: \"2\"}]\n")))
	browsertest.Wait(t, ctx, "the 50/50 traffic split", `(() => {
		const d = `+svc+`?.querySelector(".traffic")?.dataset.traffic || "";
		return d.includes("iris-predictor-00001 50%") && d.includes("iris-predictor-00002 50%");
	})()`)
	browsertest.Wait(t, ctx, "the rollout progressing at 50 %", svc+`?.querySelector(".rollout-state")?.textContent === "Progressing" &&
		`+svc+`.querySelector("progress.rollout-progress")?.value === 50`)

	// Traffic through the ingress shows as a request rate per revision.
	sendCtx, stopSending := context.WithCancel(t.Context())
	var sending sync.WaitGroup
	sending.Go(func() { sendIris(sendCtx, u.ingr) })
	defer sending.Wait()
	defer stopSending()
	browsertest.Wait(t, ctx, "a request rate for revision 1", `(() => {
		const c = `+svc+`?.querySelector('tr[data-revision="iris-predictor-00001"] .rps');
		return c !== null && Number(c.textContent) > 0;
	})()`)
	// The same windows draw the revision's error rate and latency.
	browsertest.Wait(t, ctx, "error-rate and latency charts for revision 1", `(() => {
		const row = `+svc+`?.querySelector('tr[data-revision="iris-predictor-00001"]');
		const d = (sel) => row?.querySelector(sel)?.getAttribute("d") || "";
		return d("svg.chart-errors path.s-err").startsWith("M") && d("svg.chart-latency path.s-p95").startsWith("M") &&
			d("svg.chart-latency path.s-mean").startsWith("M");
	})()`)
	stopSending()

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#svc-default-iris button[data-action="pause"]`))); err != nil {
		t.Fatalf("click pause: %v", err)
	}
	browsertest.Wait(t, ctx, "the rollout paused", svc+`?.querySelector(".rollout-state")?.textContent === "Paused" &&
		!`+svc+`.querySelector('button[data-action="resume"]').disabled`)
	var st struct{ Paused bool }
	resp, err := u.apiGet("/api/v1/namespaces/default/inferenceservices/iris/rollout")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || !st.Paused {
		t.Fatalf("rollout status after Pause in the console: paused=%v (%v)", st.Paused, err)
	}

	shot := os.Getenv("FERRY_CONSOLE_SCREENSHOT")
	if shot != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	consoleTools(t, ctx, u, bin, shot)
	if errs := pageErrors(); len(errs) > 0 {
		t.Fatalf("the console reported errors:\n%s", strings.Join(errs, "\n"))
	}
}

// consoleTools drives the tools under the services: the test-request
// form answers with a prediction, Explain on a TreeShap explainer draws
// the attributions, the examples' TrainedModels are listed, and the logs
// view shows a replica's lines. With shot set it also writes
// shot-tools.png: the explained service's section.
func consoleTools(t *testing.T, ctx context.Context, u *upProcess, bin, shot string) {
	t.Helper()
	click := func(what, sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s (%s): %v", what, sel, err)
		}
	}

	// A V1 prediction of iris through POST …/infer.
	const iris = `#svc-default-iris`
	click("iris's Test request", iris+` details.try > summary`)
	browsertest.Wait(t, ctx, "the example body", `document.querySelector("`+iris+` textarea.body").value.includes("instances")`)
	click("Send", iris+` button.send`)
	browsertest.Wait(t, ctx, "a prediction in the form", `(() => {
		const s = document.querySelector("`+iris+` .result-status")?.textContent || "";
		const b = document.querySelector("`+iris+` .result-body")?.textContent || "";
		return s.startsWith("200 ") && s.includes("iris-predictor-0000") && JSON.parse(b).predictions.length === 1;
	})()`)
	// V2 rewrites the same rows as a tensor, and it answers too.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS(iris+` select.proto`), "v2")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("`+iris+` select.proto").dispatchEvent(new Event("change"))`)); err != nil {
		t.Fatal(err)
	}
	browsertest.Wait(t, ctx, "a V2 body", `JSON.parse(document.querySelector("`+iris+` textarea.body").value).inputs[0].data[0][0] === 6.8`)
	click("Send (V2)", iris+` button.send`)
	browsertest.Wait(t, ctx, "a V2 answer in the form", `(() => {
		const b = document.querySelector("`+iris+` .result-body")?.textContent || "";
		return document.querySelector("`+iris+` .result-status")?.textContent.startsWith("200 ") && JSON.parse(b).outputs?.length > 0;
	})()`)

	// The logs view shows the predictor replica's lines.
	click("iris's Logs", iris+` details.logs > summary`)
	browsertest.Wait(t, ctx, "predictor logs", `(document.querySelector("`+iris+` .replica-log pre")?.textContent || "").length > 0`)

	// The xgboost example with a TreeShap explainer, and the multi-model
	// example with its two TrainedModels.
	ex, _ := filepath.Abs("../../examples")
	u.ferryCLI(t, bin, "apply", "-f", filepath.Join(ex, "explainers", "iris-treeshap.yaml"))
	u.ferryCLI(t, bin, "apply", "-f", filepath.Join(ex, "inferenceservices", "multimodel.yaml"))
	const shap = `#svc-default-iris-treeshap`
	browsertest.Wait(t, ctx, "iris-treeshap Ready", `document.querySelector("`+shap+` .ready")?.dataset.ready === "True"`)
	browsertest.Wait(t, ctx, "the Explain button", `document.querySelector("`+shap+` button.explain")?.hidden === false`)
	click("iris-treeshap's Test request", shap+` details.try > summary`)
	click("Explain", shap+` button.explain`)
	browsertest.Wait(t, ctx, "the attribution bar chart", `(() => {
		const s = document.querySelector("`+shap+` .result-status")?.textContent || "";
		const bars = document.querySelectorAll("`+shap+` svg.attributions g.attr rect.bar");
		const names = [...document.querySelectorAll("`+shap+` svg.attributions g.attr")].map((g) => g.dataset.feature).sort();
		return s.startsWith("200 ") && bars.length === 4 && names.join() === "f0,f1,f2,f3" &&
			[...bars].some((b) => Number(b.getAttribute("width")) > 1);
	})()`)

	browsertest.Wait(t, ctx, "the examples' TrainedModels", `(() => {
		const row = (n) => document.querySelector('#trainedmodels tr[data-trainedmodel="default/' + n + '"]');
		// cells: name, namespace, InferenceService, URL, Ready
		const ok = (n) => row(n)?.cells[2]?.textContent === "mms" && row(n).querySelector(".ready")?.dataset.ready === "True" &&
			(row(n).cells[3]?.textContent || "").endsWith("/v1/models/" + n + ":predict");
		return !document.getElementById("trainedmodels").hidden && ok("iris-a") && ok("iris-b");
	})()`)

	// The multi-model server's form offers its first TrainedModel, which
	// answers through the same route.
	const mms = `#svc-default-mms`
	browsertest.Wait(t, ctx, "mms's form to offer iris-a", `document.querySelector("`+mms+` input.model")?.value === "iris-a"`)
	click("mms's Test request", mms+` details.try > summary`)
	click("Send (mms)", mms+` button.send`)
	browsertest.Wait(t, ctx, "a prediction of iris-a", `(() => {
		const b = document.querySelector("`+mms+` .result-body")?.textContent || "";
		return document.querySelector("`+mms+` .result-status")?.textContent.startsWith("200 ") && JSON.parse(b).predictions.length === 1;
	})()`)

	if shot != "" {
		png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(shap)))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(strings.TrimSuffix(shot, ".png")+"-tools.png", png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sendIris posts iris predictions through the ingress until ctx ends.
func sendIris(ctx context.Context, ingress string) {
	body := `{"instances":[[6.8,2.8,4.8,1.4]]}`
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, "POST", ingress+"/v1/models/iris:predict", strings.NewReader(body))
		if err != nil {
			return
		}
		req.Host = "iris.default.example.com"
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond): // a steady trickle, not a load test
		}
	}
}
