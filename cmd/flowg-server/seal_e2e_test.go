package main

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2E_SealingKilledAndResumed: a node holding only rows, as a version
// before blocks wrote them (here --log-seal-after=0), restarts with
// sealing on and migrates them in the background; kill -9 in the middle
// of it, a restart resumes it, and every record is there exactly once.
func TestE2E_SealingKilledAndResumed(t *testing.T) {
	const total, batch = 60_000, 5_000
	dir := t.TempDir()
	httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	args := nodeArgs(dir, 0, httpAddr, mgmtAddr)
	p := start(t, dir, nil, httpAddr, mgmtAddr, append(args, "--log-seal-after=0")...)
	tok := p.login("root", "root")
	for b := range total / batch {
		recs := make([]string, 0, batch)
		for i := b * batch; i < (b+1)*batch; i++ {
			recs = append(recs, fmt.Sprintf(`{"n":"%d","level":"%s","message":"request %d served"}`, i, []string{"info", "warn", "error"}[i%3], i))
		}
		code, out := p.request(tok, "POST", "/api/v1/streams/app/logs/struct", `{"records":[`+strings.Join(recs, ",")+`]}`)
		if code != 200 {
			t.Fatalf("batch %d: %d %s", b, code, out)
		}
	}
	if rows, sealed := sealMetrics(t, p); rows < total || sealed != 0 {
		t.Fatalf("with sealing off: %d rows, %d sealed", rows, sealed)
	}
	p.cmd.Process.Signal(os.Interrupt)
	p.wait()

	p = start(t, dir, nil, httpAddr, mgmtAddr, append(args, "--log-seal-after=1s")...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		rows, sealed := sealMetrics(t, p)
		if sealed > 0 {
			if rows == 0 {
				t.Fatal("the migration ended before the kill")
			}
			t.Logf("killed with %d records sealed, %d rows left", sealed, rows)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing sealed within 60 s:\n%s", p.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait()
	if !strings.Contains(p.logText(), "sealing rows into blocks") {
		t.Fatalf("the migration is not in the log:\n%s", p.logText())
	}

	p = p.restart()
	eventually(t, 120*time.Second, "every row sealed", func() bool { rows, _ := sealMetrics(t, p); return rows == 0 })
	tok = p.login("root", "root")
	ns := p.queryAll(tok, "app", url.Values{"limit": {"5000"}})
	if len(ns) != total {
		t.Fatalf("%d records after the migration, want %d", len(ns), total)
	}
	got := make([]int, len(ns))
	for i, n := range ns {
		got[i], _ = strconv.Atoi(n)
	}
	slices.Sort(got)
	for i, n := range got {
		if n != i {
			t.Fatalf("record %d missing or twice (found %d at %d)", i, n, i)
		}
	}
	errs := p.queryAll(tok, "app", url.Values{"limit": {"5000"}, "filter": {`level = "error" and message has "served"`}})
	if len(errs) != total/3 {
		t.Fatalf("%d error records, want %d", len(errs), total/3)
	}
}

var metricLine = regexp.MustCompile(`(?m)^(flowg_store_row_records|flowg_store_sealed_records_total) (\S+)$`)

// sealMetrics reads the rows left and the records sealed since the start.
func sealMetrics(t *testing.T, p *proc) (rows, sealed int) {
	t.Helper()
	for _, m := range metricLine.FindAllStringSubmatch(scrape(t, p), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		if m[1] == "flowg_store_row_records" {
			rows = int(v)
		} else {
			sealed = int(v)
		}
	}
	return rows, sealed
}
