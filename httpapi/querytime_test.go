package httpapi_test

import (
	"bufio"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/httpapi"
)

func TestParseQueryTime(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for s, want := range map[string]string{
		"now": "2026-12-02T12:00:00Z", "-1h": "2026-12-02T11:00:00Z", "now-15m": "2026-12-02T11:45:00Z",
		"now+5m": "2026-12-02T12:05:00Z", "-1h30m": "2026-12-02T10:30:00Z", "now-7d": "2026-11-25T12:00:00Z",
		"-1w": "2026-11-25T12:00:00Z", "-1.5h": "2026-12-02T10:30:00Z", "2026-01-02T03:04:05+01:00": "2026-01-02T02:04:05Z",
		"1767225600": "2026-01-01T00:00:00Z", "1767225600123": "2026-01-01T00:00:00.123Z",
	} {
		got, err := httpapi.ParseQueryTime(s, now)
		if err != nil || got.Format(time.RFC3339Nano) != want {
			t.Errorf("ParseQueryTime(%q) = %s, %v; want %s", s, got.Format(time.RFC3339Nano), err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-", "now-", "now-15", "-1y", "now*2", "-1h-", "-999999999999h"} {
		if _, err := httpapi.ParseQueryTime(bad, now); err == nil {
			t.Errorf("ParseQueryTime(%q) accepted", bad)
		}
	}
}

// TestQuery_RelativeTimesAndStrictParams: from=-1h works; a misspelt
// parameter is a 400 that names it instead of returning everything.
func TestQuery_RelativeTimesAndStrictParams(t *testing.T) {
	n := newNode(t)
	n.call("POST", "/api/v1/streams/app/logs/struct", "application/json", `{"records":[{"message":"recent"}]}`, 200, nil)
	if got := n.query("app", url.Values{"from": {"-1h"}, "to": {"now+1m"}}).Records; len(got) != 1 {
		t.Fatalf("from=-1h: %d records", len(got))
	}
	if got := n.query("app", url.Values{"to": {"-1h"}}).Records; len(got) != 0 {
		t.Fatalf("to=-1h: %d records", len(got))
	}
	for _, p := range []string{"query", "filters"} {
		code, body := n.do("GET", "/api/v1/streams/app/logs?"+p+"=x", "", "")
		if code != 400 || !strings.Contains(body, `unknown query parameter \"`+p+`\"`) || !strings.Contains(body, "filter") {
			t.Errorf("%s=: %d %s", p, code, body)
		}
	}
	if code, _ := n.do("POST", "/api/v1/streams/app/logs/struct?stream=x", "application/json", `[]`); code != 400 {
		t.Errorf("unknown ingest parameter: %d", code)
	}
}

// TestWatch_StreamThatDoesNotExistYet: open the tail, then start the
// application; the first record arrives.
func TestWatch_StreamThatDoesNotExistYet(t *testing.T) {
	n := newNode(t)
	req, _ := http.NewRequest("GET", n.public.URL+"/api/v1/streams/later/logs/watch", nil)
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("tail of a stream not created yet: %v %v", resp, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), ": watching later") { // subscribed
		t.Fatalf("first line %q", sc.Text())
	}
	got := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") && strings.Contains(sc.Text(), "first") {
				got <- sc.Text()
				return
			}
		}
	}()
	n.call("POST", "/api/v1/streams/later/logs/struct", "application/json", `{"records":[{"message":"first"}]}`, 200, nil)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the record did not reach the tail opened before its stream existed")
	}
	if code, _ := n.do("GET", "/api/v1/streams/.bad/logs/watch", "", ""); code != 400 {
		t.Errorf("invalid stream name: %d", code)
	}
}
