package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// browser starts a headless Chromium (Debian's, installed by
// scripts/test-deps.sh; $FLOWG_CHROMIUM when set) and returns a tab.
func browser(t testing.TB) context.Context {
	t.Helper()
	exe := os.Getenv("FLOWG_CHROMIUM")
	if exe == "" {
		var err error
		if exe, err = exec.LookPath("chromium"); err != nil {
			t.Fatal("the browser tests need Chromium (scripts/test-deps.sh installs Debian's chromium)")
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 900), chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(cancelTab)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancelTime)
	return ctx
}

// screenshot saves the page as docs/screenshots/<name>.png when
// FLOWG_SCREENSHOTS is set (make screenshots), else in the test's
// directory.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := t.TempDir()
	if os.Getenv("FLOWG_SCREENSHOTS") != "" {
		dir = "../../docs/screenshots"
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// value runs one action that answers, failing the test on error.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// TestE2E_WebUI drives the web UI in Chromium against a three-node
// cluster: log in, search with a filter (rows and histogram), page, open a
// record, zoom the histogram, see a filter's syntax error at its column,
// tail a stream and see a record ingested afterwards, watch a killed node
// turn failed on the cluster page, and create a token that works with the
// API.
func TestE2E_WebUI(t *testing.T) {
	t.Parallel() // waits on processes and the browser most of its time
	nodes := threeNodes(t, t.TempDir())
	n0 := nodes[0]
	tok := n0.login("root", "root")
	now := time.Now().UTC()
	var recs []string
	for i := range 600 {
		level := []string{"info", "warn", "error"}[i%3]
		recs = append(recs, fmt.Sprintf(`{"timestamp":%q,"level":%q,"service":"svc-%d","host":"web-%d","latency":%d,"message":"request %d served"}`,
			now.Add(-time.Duration(i)*3*time.Second).Format(time.RFC3339Nano), level, i%4, i%3, i%500, i))
	}
	if code, b := n0.request(tok, "POST", "/api/v1/streams/app/logs/struct", `{"records":[`+strings.Join(recs, ",")+`]}`); code != 200 {
		t.Fatalf("ingest: %d %s", code, b)
	}
	base := "http://" + n0.http
	ctx := browser(t)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Log in: the UI is served at / and asks for a login first.
	run("log in", chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(`form.login`),
		chromedp.SendKeys(`input[name=username]`, "root"),
		chromedp.SendKeys(`input[name=password]`, "root"),
		chromedp.Click(`form.login button[type=submit]`),
		chromedp.WaitVisible(`table.records`))

	// Search errors of the last hour: every row an error, a histogram.
	run("search", chromedp.Navigate(base+"/#/search?stream=app&from=-1h&columns=level,service,message&filter=level%20%3D%20%22error%22"),
		chromedp.WaitVisible(`.histogram svg rect`),
		chromedp.WaitVisible(`table.records tbody tr`))
	levels := value(t, ctx, "levels", chromedp.Evaluate[[]string](`[...document.querySelectorAll('table.records tbody td:nth-child(2)')].map(td => td.textContent)`))
	bars := value(t, ctx, "bars", chromedp.Evaluate[int](`document.querySelectorAll('.histogram svg rect:not(.selection)').length`))
	if len(levels) != 100 || bars == 0 {
		t.Fatalf("search: %d rows, %d histogram bars", len(levels), bars)
	}
	for _, l := range levels {
		if l != "error" {
			t.Fatalf("a row of level %q under the filter level = \"error\"", l)
		}
	}
	screenshot(t, ctx, "search")
	// The same page in dark mode.
	run("dark mode", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}))
	if bg := value(t, ctx, "background", chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`)); bg != "rgb(19, 21, 24)" {
		t.Errorf("dark mode background %s", bg)
	}
	screenshot(t, ctx, "search-dark")
	run("light mode", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
		return err
	}))

	// Page: the next page holds the 100 older errors.
	firstBefore := value(t, ctx, "first row", chromedp.Text(`table.records tbody tr td.time`))
	run("page", chromedp.Click(`//button[contains(., 'Older')]`), chromedp.WaitVisible(`//button[contains(., 'Newer')]`))
	firstAfter := value(t, ctx, "first row", chromedp.Text(`table.records tbody tr td.time`))
	if firstAfter >= firstBefore {
		t.Errorf("the second page starts at %s, not before the first (%s)", firstAfter, firstBefore)
	}

	// Open a record: every field in the detail.
	run("open a record", chromedp.Click(`table.records tbody tr`), chromedp.WaitVisible(`.detail table.kv`))
	detail := value(t, ctx, "detail", chromedp.Text(`.detail`))
	for _, f := range []string{"host", "latency", "level", "message", "service", "timestamp"} {
		if !strings.Contains(detail, f) {
			t.Errorf("the record's detail lacks %s: %s", f, detail)
		}
	}

	// Zoom: drag across the middle of the histogram.
	run("histogram", chromedp.Navigate(base+"/#/search?stream=app&from=-1h"), chromedp.WaitVisible(`.histogram svg rect`))
	box := value(t, ctx, "histogram box", chromedp.Evaluate[[]float64](`(() => { const b = document.querySelector('.histogram svg').getBoundingClientRect(); return [b.left, b.top, b.width, b.height]; })()`))
	y := box[1] + box[3]/2
	run("zoom", chromedp.MouseEvent(chromedp.MousePressed, box[0]+box[2]*0.4, y, chromedp.ButtonLeft, chromedp.ClickCount(1)),
		chromedp.MouseEvent(chromedp.MouseMoved, box[0]+box[2]*0.5, y, chromedp.ButtonLeft),
		chromedp.MouseEvent(chromedp.MouseReleased, box[0]+box[2]*0.6, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`location.hash.includes('to=')`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("dragging across the histogram did not zoom: %v", err)
	}

	// A syntax error shows the API's message with its column marked.
	run("syntax error", chromedp.Navigate(base+"/#/search?stream=app&filter=level%20%3D"), chromedp.WaitVisible(`.error.syntax mark`))
	if syntax := value(t, ctx, "syntax", chromedp.Text(`.error.syntax div`)); !strings.Contains(syntax, "filter syntax error at column 8") {
		t.Errorf("syntax error shown as %q", syntax)
	}

	// Live tail: a record ingested after the tail opened appears.
	run("open the tail", chromedp.Navigate(base+"/#/tail?stream=app"), chromedp.WaitVisible(`table.tail`))
	value(t, ctx, "tail live", chromedp.Poll[bool](`document.querySelector('.status').textContent.startsWith('live')`, chromedp.WithPollingTimeout(10*time.Second)))
	if code, b := nodes[1].request(nodes[1].login("root", "root"), "POST", "/api/v1/streams/app/logs/struct", `{"records":[{"message":"tailed from n1","level":"info"}]}`); code != 200 {
		t.Fatalf("ingest on n1: %d %s", code, b)
	}
	run("see the tailed record", chromedp.WaitVisible(`//table[contains(@class,'tail')]//td[contains(., 'tailed from n1')]`))
	screenshot(t, ctx, "tail")

	// The cluster: three nodes alive, then n2 killed turns failed.
	run("cluster", chromedp.Navigate(base+"/#/cluster"), chromedp.WaitVisible(`tr[data-node="n2"]`))
	if rows := value(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll('table.nodes tbody tr').length`)); rows != 3 {
		t.Fatalf("the cluster page lists %d nodes", rows)
	}
	nodes[2].cmd.Process.Signal(syscall.SIGKILL)
	nodes[2].wait()
	run("n2 turns failed", chromedp.WaitVisible(`tr[data-node="n2"] .status-failed`), chromedp.WaitVisible(`.notice`))
	screenshot(t, ctx, "cluster")

	// A personal token created in the UI works with the API.
	run("create a token", chromedp.Navigate(base+"/#/admin?tab=tokens"), chromedp.WaitVisible(`input[aria-label="token name"]`),
		chromedp.SendKeys(`input[aria-label="token name"]`, "ci"),
		chromedp.Click(`form.inline button[type=submit]`),
		chromedp.WaitVisible(`#new-token`))
	created := value(t, ctx, "token", chromedp.Text(`#new-token`))
	out, err := exec.Command("curl", "-sSf", "-H", "Authorization: Bearer "+created, base+"/api/v1/streams").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"name":"app"`) {
		t.Fatalf("curl with the token from the UI (%q): %v %s", created, err, out)
	}
	screenshot(t, ctx, "tokens")
	run("streams admin", chromedp.Navigate(base+"/#/admin?tab=streams"), chromedp.WaitVisible(`//a[.='app']`))
	screenshot(t, ctx, "admin")

	// An action the API refuses shows the API's error: nine indexed fields.
	run("refused settings", chromedp.Evaluate[chromedp.Void](`document.querySelector('input[aria-label="indexed fields of app"]').value = 'a,b,c,d,e,f,g,h,i'`),
		chromedp.Click(`//button[.='Save']`), chromedp.WaitVisible(`.error`))
	if msg := value(t, ctx, "error", chromedp.Text(`.error`)); !strings.HasPrefix(msg, "400: ") || !strings.Contains(msg, "indexed") {
		t.Errorf("a refused save shows %q", msg)
	}
}

// BenchmarkUI loads 1,000,000 seeded records (internal/dataset) spread
// over the last day into one node and reports the web UI's size and the
// time from navigation to the search page's first rows, its histogram and
// its sidebar, over the last hour (the default) and over all time, in
// Debian's Chromium; 5 loads each, p50.
func BenchmarkUI(b *testing.B) {
	bin := benchBin(b)
	for range b.N {
		withBin(bin, func() { benchUI(b) })
	}
}

func benchUI(b *testing.B) {
	const total, batch = 1_000_000, 500
	to := time.Now().UTC()
	bodies, _ := datasetBodies(2, total, batch, to.Add(-24*time.Hour), to)
	dir := b.TempDir()
	httpAddr, mgmtAddr := freeAddr(b), freeAddr(b)
	n := start(b, dir, nil, httpAddr, mgmtAddr, nodeArgs(dir, 0, httpAddr, mgmtAddr)...)
	tok := n.login("root", "root")
	postAll(b, "http://"+httpAddr+"/api/v1/streams/bench/logs/struct", bodies, 8,
		http.Header{"Content-Type": {"application/x-ndjson"}, "Authorization": {"Bearer " + tok}})
	waitIdle(b, n.cmd.Process.Pid, 60*time.Second)

	size := 0
	for _, f := range []string{"/", "/ui/app.js", "/ui/app.css"} {
		code, body := n.request("", "GET", f, "")
		if code != 200 {
			b.Fatalf("GET %s: %d", f, code)
		}
		size += len(body)
	}
	ctx := browser(b)
	base := "http://" + httpAddr
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(`form.login`),
		chromedp.SendKeys(`input[name=username]`, "root"), chromedp.SendKeys(`input[name=password]`, "root"),
		chromedp.Click(`form.login button[type=submit]`), chromedp.WaitVisible(`table.records`)); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("ui: %d bytes (index.html, app.js, app.css)\n", size)
	for _, view := range []struct{ name, hash string }{{"last hour", "#/search?stream=bench"}, {"all time", "#/search?stream=bench&from=all"}} {
		var rows, histo, side []time.Duration
		for range 5 {
			if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"+view.hash)); err != nil {
				b.Fatal(err)
			}
			for _, w := range []struct {
				sel  string
				into *[]time.Duration
			}{{`table.records tbody tr`, &rows}, {`.histogram svg rect`, &histo}, {`.fields details`, &side}} {
				if err := chromedp.Do(ctx, chromedp.WaitVisible(w.sel)); err != nil {
					b.Fatal(err)
				}
				*w.into = append(*w.into, time.Since(start))
			}
		}
		p50 := func(d []time.Duration) float64 { slices.Sort(d); return float64(d[len(d)/2].Milliseconds()) }
		fmt.Printf("ui: search page over %s of %d records: first rows %.0f ms, histogram %.0f ms, sidebar %.0f ms (p50 of 5)\n", view.name, total, p50(rows), p50(histo), p50(side))
	}
}
