package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/filter"
)

// testConfig starts from the defaults with directories under t.TempDir and a
// cheap password hash.
func testConfig(t *testing.T, dir string) Config {
	t.Helper()
	c := DefaultConfig()
	c.AuthDir, c.LogDir, c.ConfigDir = dir+"/auth", dir+"/logs", dir+"/config"
	c.Argon2 = Argon2Params{Time: 1, Memory: 64, Threads: 1}
	return c
}

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// rec makes a record i seconds after t0.
func rec(i int, kv ...string) flowg.Record {
	f := map[string]string{"n": fmt.Sprint(i)}
	for j := 0; j+1 < len(kv); j += 2 {
		f[kv[j]] = kv[j+1]
	}
	return flowg.Record{Timestamp: t0.Add(time.Duration(i) * time.Second), Fields: f}
}

func ns(p flowg.Page) []string {
	var out []string
	for _, r := range p.Records {
		out = append(out, r.Fields["n"])
	}
	return out
}

func mustFilter(t *testing.T, s string) *filter.Filter {
	t.Helper()
	f, err := filter.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// appendN appends records 0..n-1 as rows: in requests too small to go
// straight into blocks.
func appendN(t *testing.T, s *Store, stream string, n int) {
	t.Helper()
	appendRange(t, s, stream, 0, n, directMin-1)
}

// appendRange appends records from..from+n-1, batch a request.
func appendRange(t *testing.T, s *Store, stream string, from, n, batch int) {
	t.Helper()
	for lo := from; lo < from+n; lo += batch {
		var recs []flowg.Record
		for i := lo; i < min(lo+batch, from+n); i++ {
			lvl := []string{"info", "warn", "error"}[i%3]
			recs = append(recs, rec(i, "level", lvl, "host", fmt.Sprintf("h%d", i%2)))
		}
		if err := s.Logs.Append(context.Background(), stream, recs); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQuery_OrderWindowAndPages(t *testing.T) {
	s := openTest(t, t.TempDir())
	appendN(t, s, "app", 10)
	ctx := context.Background()

	p, err := s.Logs.Query(ctx, flowg.Query{Stream: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if got := ns(p); !slices.Equal(got, []string{"9", "8", "7", "6", "5", "4", "3", "2", "1", "0"}) || p.NextCursor != "" {
		t.Fatalf("newest first = %v cursor %q", got, p.NextCursor)
	}
	p, _ = s.Logs.Query(ctx, flowg.Query{Stream: "app", Ascending: true, From: t0.Add(2 * time.Second), To: t0.Add(5 * time.Second)})
	if got := ns(p); !slices.Equal(got, []string{"2", "3", "4"}) {
		t.Fatalf("window [2s,5s) ascending = %v", got)
	}
	for _, asc := range []bool{false, true} {
		var all []string
		q := flowg.Query{Stream: "app", Limit: 3, Ascending: asc}
		for pages := 0; ; pages++ {
			p, err := s.Logs.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, ns(p)...)
			if p.NextCursor == "" {
				break
			}
			if pages > 10 {
				t.Fatal("paging does not end")
			}
			q.Cursor = p.NextCursor
		}
		want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
		if !asc {
			slices.Reverse(want)
		}
		if !slices.Equal(all, want) {
			t.Fatalf("pages of 3 (ascending=%v) = %v, want %v", asc, all, want)
		}
	}
}

func TestQuery_IndexAndScanAgree(t *testing.T) {
	s := openTest(t, t.TempDir())
	appendN(t, s, "app", 300)
	ctx := context.Background()
	for _, f := range []string{
		`level = "error"`, `level = "error" and host = "h1"`, `host = "h1" and level = "warn"`,
		`level = "nope"`, `level = "info" and n ~= "^1"`,
	} {
		flt := mustFilter(t, f)
		viaIndex, err := s.Logs.Query(ctx, flowg.Query{Stream: "app", Filter: flt, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		// The same filter behind an or cannot use the index: a full scan.
		scan, err := s.Logs.Query(ctx, flowg.Query{Stream: "app", Filter: mustFilter(t, "("+f+`) or n = "none"`), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ns(viaIndex), ns(scan)) {
			t.Fatalf("%s: index gives %d records, scan %d", f, len(viaIndex.Records), len(scan.Records))
		}
		if f == `level = "error"` && (len(scan.Records) != 100 || viaIndex.Scanned != 100) {
			t.Fatalf("%s: %d records, %d entries read, want 100 and 100", f, len(scan.Records), viaIndex.Scanned)
		}
	}
}

func TestQuery_ScanBudgetGivesCursor(t *testing.T) {
	c := testConfig(t, t.TempDir())
	c.MaxScan = 4
	s, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendN(t, s, "app", 10)
	q := flowg.Query{Stream: "app", Filter: mustFilter(t, `n = "0"`)}
	var found []string
	for range 5 {
		p, err := s.Logs.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, ns(p)...)
		if p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	if !slices.Equal(found, []string{"0"}) {
		t.Fatalf("found %v across budget-limited pages", found)
	}
}

func TestQuery_Failure(t *testing.T) {
	s := openTest(t, t.TempDir())
	appendN(t, s, "app", 1)
	if _, err := s.Logs.Query(context.Background(), flowg.Query{Stream: "nope"}); !errors.Is(err, flowg.ErrNotFound) {
		t.Fatalf("unknown stream: %v", err)
	}
	if _, err := s.Logs.Query(context.Background(), flowg.Query{Stream: "app", Cursor: "xyz"}); !errors.Is(err, flowg.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestAppend_RejectsWholeBatch(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	bad := []flowg.Record{rec(1), rec(2, "big", string(make([]byte, flowg.MaxFieldValueLen+1)))}
	if err := s.Logs.Append(ctx, "app", bad); err == nil {
		t.Fatal("a batch with an oversize field was accepted")
	}
	if err := s.Logs.Append(ctx, "bad/name", []flowg.Record{rec(1)}); err == nil {
		t.Fatal("an illegal stream name was accepted")
	}
	if u := s.Logs.Usage("app"); u.Records != 0 {
		t.Fatalf("rejected batch left %d records", u.Records)
	}
}

func TestAppend_ConcurrentAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), testConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := s.Logs.Append(context.Background(), "app", []flowg.Record{rec(w*1000 + i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s = openTest(t, dir)
	if u := s.Logs.Usage("app"); u.Records != 400 {
		t.Fatalf("after reopen: %d records, want 400", u.Records)
	}
	p, _ := s.Logs.Query(context.Background(), flowg.Query{Stream: "app", Limit: 1000})
	if len(p.Records) != 400 {
		t.Fatalf("after reopen the query finds %d records", len(p.Records))
	}
	if err := s.Logs.Append(context.Background(), "app", []flowg.Record{rec(0)}); err != nil {
		t.Fatal(err)
	}
	if u := s.Logs.Usage("app"); u.Records != 401 {
		t.Fatalf("a record at an existing timestamp did not get its own key: %d records", u.Records)
	}
}

func TestRetention(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	appendN(t, s, "age", 5000)
	appendN(t, s, "size", 100)
	if err := s.Logs.PutSettings(ctx, "age", flowg.StreamSettings{RetentionTime: time.Hour, IndexedFields: []string{"level"}}); err != nil {
		t.Fatal(err)
	}
	before := s.Logs.Usage("size")
	if err := s.Logs.PutSettings(ctx, "size", flowg.StreamSettings{RetentionSize: before.Bytes / 2}); err != nil {
		t.Fatal(err)
	}
	// Now is 4000 s after t0: records 0..399 are over one hour old.
	n, err := s.Logs.ApplyRetention(ctx, t0.Add(4000*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	u := s.Logs.Usage("age")
	if u.Records != 5000-400 || !u.Oldest.Equal(t0.Add(400*time.Second)) {
		t.Fatalf("age retention left %d records from %s", u.Records, u.Oldest)
	}
	p, _ := s.Logs.Query(ctx, flowg.Query{Stream: "age", Filter: mustFilter(t, `level = "info"`), Limit: 5000, Ascending: true})
	if p.Records[0].Fields["n"] != "402" {
		t.Fatalf("index still finds deleted records: first info record is %s", p.Records[0].Fields["n"])
	}
	us := s.Logs.Usage("size")
	if us.Bytes > before.Bytes/2 || us.Records < 45 {
		t.Fatalf("size retention: %d bytes in %d records, limit %d", us.Bytes, us.Records, before.Bytes/2)
	}
	if n != 400+int(100-us.Records) {
		t.Fatalf("ApplyRetention reported %d deletions", n)
	}
}

func TestPutSettings_IndexesExistingRecords(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	appendN(t, s, "app", 30)
	if err := s.Logs.PutSettings(ctx, "app", flowg.StreamSettings{IndexedFields: []string{"host"}}); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Logs.Query(ctx, flowg.Query{Stream: "app", Filter: mustFilter(t, `host = "h1"`), Limit: 100})
	if len(p.Records) != 15 || p.Scanned != 15 {
		t.Fatalf("new index: %d records from %d entries, want 15 from 15", len(p.Records), p.Scanned)
	}
	p, _ = s.Logs.Query(ctx, flowg.Query{Stream: "app", Filter: mustFilter(t, `level = "warn"`), Limit: 100})
	if len(p.Records) != 10 || p.Scanned != 30 {
		t.Fatalf("dropped index: %d records from %d entries, want 10 from a 30-record scan", len(p.Records), p.Scanned)
	}
	if err := s.Logs.PutSettings(ctx, "app", flowg.StreamSettings{RetentionTime: time.Millisecond}); err == nil {
		t.Fatal("retention under 1s was accepted")
	}
}

func TestPurge(t *testing.T) {
	s := openTest(t, t.TempDir())
	ctx := context.Background()
	appendN(t, s, "app", 10)
	appendN(t, s, "app2", 10)
	if err := s.Logs.Purge(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Logs.Query(ctx, flowg.Query{Stream: "app"}); !errors.Is(err, flowg.ErrNotFound) {
		t.Fatalf("purged stream still answers: %v", err)
	}
	if u := s.Logs.Usage("app2"); u.Records != 10 {
		t.Fatalf("purging app touched app2: %d records", u.Records)
	}
	appendN(t, s, "app", 2)
	if p, _ := s.Logs.Query(ctx, flowg.Query{Stream: "app"}); len(p.Records) != 2 {
		t.Fatalf("recreated stream holds %d records, want 2", len(p.Records))
	}
}

func TestSubscribe(t *testing.T) {
	s := openTest(t, t.TempDir())
	sub := s.Logs.Subscribe("app")
	defer sub.Close()
	appendN(t, s, "other", 1)
	appendN(t, s, "app", 3)
	select {
	case recs := <-sub.Records():
		if len(recs) != 3 {
			t.Fatalf("got %d records, want 3", len(recs))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no records on the subscription")
	}
	for range tailBuffer + 1 {
		appendN(t, s, "app", 1)
	}
	for range sub.Records() {
	}
	if !sub.Lagged() {
		t.Fatal("a subscriber that fell behind was not marked lagged")
	}
	sub.Close()
}

func TestAuth(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ctx := context.Background()
	a := s.Auth
	tok, err := a.Login(ctx, "root", "root")
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(tok)
	if err != nil || p.User != "root" || !p.Has(flowg.ScopeWriteACLs) {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	if _, err := a.Login(ctx, "root", "wrong"); !errors.Is(err, flowg.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := a.Login(ctx, "nobody", "root"); !errors.Is(err, flowg.ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	flipped := tok[:len(tok)-1] + "A"
	if tok[len(tok)-1] == 'A' {
		flipped = tok[:len(tok)-1] + "B"
	}
	for _, bad := range []string{"", "fgt_", tok + "x", flipped, "Bearer " + tok} {
		if _, err := a.Authenticate(bad); !errors.Is(err, flowg.ErrBadToken) {
			t.Fatalf("Authenticate(%q) = %v", bad, err)
		}
	}

	if err := a.PutRole("reader", []flowg.Scope{"read_streams"}); err != nil {
		t.Fatal(err)
	}
	if err := a.PutRole("x", []flowg.Scope{"fly"}); !errors.Is(err, flowg.ErrInvalid) {
		t.Fatalf("unknown scope: %v", err)
	}
	if err := a.PutRole(flowg.AdminRole, nil); !errors.Is(err, flowg.ErrBuiltin) {
		t.Fatalf("changing admin: %v", err)
	}
	if err := a.PutUser(ctx, "alice", "short", []string{"reader"}); !errors.Is(err, flowg.ErrInvalid) {
		t.Fatalf("short password: %v", err)
	}
	if err := a.PutUser(ctx, "alice", "a-long-password", []string{"ghost"}); !errors.Is(err, flowg.ErrUnknownRole) {
		t.Fatalf("unknown role: %v", err)
	}
	if err := a.PutUser(ctx, "alice", "a-long-password", []string{"reader"}); err != nil {
		t.Fatal(err)
	}
	at, err := a.Login(ctx, "alice", "a-long-password")
	if err != nil {
		t.Fatal(err)
	}
	pat, info, err := a.CreateToken("alice", "ci")
	if err != nil {
		t.Fatal(err)
	}
	p, err = a.Authenticate(pat)
	if err != nil || !p.Has(flowg.ScopeReadStreams) || p.Has(flowg.ScopeSendLogs) {
		t.Fatalf("personal token: %+v, %v", p, err)
	}
	if err := a.RevokeToken("root", info.ID); !errors.Is(err, flowg.ErrNotFound) {
		t.Fatalf("revoking another user's token: %v", err)
	}
	if err := a.RevokeToken("alice", info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(pat); !errors.Is(err, flowg.ErrBadToken) {
		t.Fatalf("revoked token: %v", err)
	}
	if err := a.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(at); !errors.Is(err, flowg.ErrBadToken) {
		t.Fatalf("token of a deleted user: %v", err)
	}
	if err := a.DeleteRole(flowg.AdminRole); !errors.Is(err, flowg.ErrBuiltin) {
		t.Fatalf("deleting admin: %v", err)
	}
}

// TestAuth_ExpiredSessionsAreSwept logs in again and again with sessions
// that expire at once: each login deletes the user's expired sessions.
func TestAuth_ExpiredSessionsAreSwept(t *testing.T) {
	c := testConfig(t, t.TempDir())
	c.SessionTTL = time.Nanosecond
	s, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range 5 {
		if _, err := s.Auth.Login(context.Background(), "root", "root"); err != nil {
			t.Fatal(err)
		}
	}
	tokens, _ := s.Auth.Tokens("root")
	if len(tokens) > 1 {
		t.Fatalf("%d sessions kept after 5 logins with expired sessions, want at most the last", len(tokens))
	}
}

// TestOrigin: a new log database writes under "<node ID>@<random>", kept
// across restarts (and node ID changes); an empty disk under the same node
// ID gets another; a database written before origins were kept goes on
// under the node ID its records carry.
func TestOrigin(t *testing.T) {
	dir := t.TempDir()
	open := func(dir, node string) *Store {
		c := testConfig(t, dir)
		c.NodeID = node
		s, err := Open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(dir, "n1")
	first := s.Logs.Origin()
	if !regexp.MustCompile(`^n1@[a-z2-7]{8}$`).MatchString(first) {
		t.Fatalf("origin %q", first)
	}
	appendN(t, s, "app", 3)
	if h := s.Logs.Heads()[first]; h != 3 {
		t.Fatalf("head of the own origin %d, want 3", h)
	}
	s.Close()
	s = open(dir, "renamed")
	if got := s.Logs.Origin(); got != first || s.Logs.Head() != 3 {
		t.Fatalf("after a restart: origin %q head %d, want %q and 3", got, s.Logs.Head(), first)
	}
	// As before origins were kept: records, no m/self.
	if err := s.Logs.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(keySelf)) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(dir, "n1")
	if got := s.Logs.Origin(); got != "n1" {
		t.Fatalf("a database written before origins were kept: origin %q, want the node ID", got)
	}
	s.Close()

	wiped := open(t.TempDir(), "n1")
	defer wiped.Close()
	if got := wiped.Logs.Origin(); got == first || !strings.HasPrefix(got, "n1@") {
		t.Fatalf("an empty disk under the same node ID writes under %q (the former one was %q)", got, first)
	}
}
