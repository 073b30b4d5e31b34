package store_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/filter"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/store/storetest"
)

func named(id string) func(*store.Config) { return func(c *store.Config) { c.NodeID = id } }

// TestMeta_LastWriterWinsInAnyOrder: entries from three nodes applied in
// every order leave the same value, deletes included, and applying them
// again changes nothing.
func TestMeta_LastWriterWinsInAnyOrder(t *testing.T) {
	a, b := storetest.Open(t, named("a")), storetest.Open(t, named("b"))
	var changes [][]flowg.MetaEntry
	collect := func(es []flowg.MetaEntry) { changes = append(changes, slices.Clone(es)) }
	a.OnMetaChange(collect)
	b.OnMetaChange(collect)
	if err := a.Auth.PutRole("ops", []flowg.Scope{flowg.ScopeReadStreams}); err != nil {
		t.Fatal(err)
	}
	if err := b.Auth.PutRole("ops", []flowg.Scope{flowg.ScopeSendLogs}); err != nil {
		t.Fatal(err)
	}
	if err := a.Auth.PutRole("gone", nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Auth.DeleteRole("gone"); err != nil {
		t.Fatal(err)
	}
	var all []flowg.MetaEntry
	for _, c := range changes {
		all = append(all, c...)
	}
	want := ""
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 3, 0, 2}} {
		c := storetest.Open(t, named("c"))
		for _, i := range order {
			if _, err := c.ApplyMeta([]flowg.MetaEntry{all[i]}); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := c.ApplyMeta(all); err != nil || n != 0 {
			t.Fatalf("applying again changed %d entries: %v", n, err)
		}
		r, err := c.Auth.Role("ops")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(r.Scopes[0]); want == "" {
			want = got
		} else if got != want {
			t.Fatalf("order %v: ops = %s, another order gave %s", order, got, want)
		}
		if _, err := c.Auth.Role("gone"); err == nil {
			t.Fatalf("order %v: a deleted role is back", order)
		}
	}
	// b wrote last (its clock moved past a's when... it did not see it, so
	// the later wall time wins); both a and b converge to the same.
	a.ApplyMeta(all)
	b.ApplyMeta(all)
	ra, _ := a.Auth.Role("ops")
	rb, _ := b.Auth.Role("ops")
	if !slices.Equal(ra.Scopes, rb.Scopes) || string(ra.Scopes[0]) != want {
		t.Fatalf("a has %v, b has %v, others %s", ra.Scopes, rb.Scopes, want)
	}
	// The boot entries (admin role, initial user) never beat a change made
	// on purpose, whatever the node.
	if err := a.Auth.PutUser(context.Background(), "root", "a-new-root-password", []string{flowg.AdminRole}); err != nil {
		t.Fatal(err)
	}
	es, _ := a.MetaEntries()
	d := storetest.Open(t, named("d"))
	d.ApplyMeta(es)
	if _, err := d.Auth.Login(context.Background(), "root", "root"); err == nil {
		t.Fatal("a new node's default root password beats the cluster's")
	}
	if n, err := d.DropTombstones(time.Hour); err != nil || n != 0 {
		t.Fatalf("tombstones younger than the window dropped: %d %v", n, err)
	}
	if n, err := d.DropTombstones(-time.Hour); err != nil || n != 1 {
		t.Fatalf("tombstones older than the window: dropped %d, want 1 (%v)", n, err)
	}
}

// TestApplyOrigin_IdempotentAndPurge: a batch applied twice is stored once;
// the mark moves with the data; records a purge covered are dropped when
// they arrive late; retention-deleted records leave a gap ReadOrigin skips.
func TestApplyOrigin_IdempotentAndPurge(t *testing.T) {
	ctx := context.Background()
	src, dst := storetest.Open(t, named("src")), storetest.Open(t, named("dst"))
	origin := src.Logs.Origin()
	now := time.Now()
	var recs []flowg.Record
	for i := range 10 {
		recs = append(recs, flowg.Record{Timestamp: now.Add(time.Duration(i) * time.Millisecond), Fields: map[string]string{"i": string(rune('a' + i))}})
	}
	if err := src.Logs.Append(ctx, "app", recs); err != nil {
		t.Fatal(err)
	}
	batch, upTo, err := src.Logs.ReadOrigin(origin, 0, 4, 1<<20)
	if err != nil || len(batch) != 4 || upTo != 4 {
		t.Fatalf("first batch: %d records up to %d: %v", len(batch), upTo, err)
	}
	for range 2 {
		if _, err := dst.Logs.ApplyOrigin(ctx, origin, batch, upTo); err != nil {
			t.Fatal(err)
		}
	}
	rest, upTo2, _ := src.Logs.ReadOrigin(origin, dst.Logs.Heads()[origin], 100, 1<<20)
	if len(rest) != 6 || upTo2 != 10 {
		t.Fatalf("second batch: %d up to %d", len(rest), upTo2)
	}
	if _, err := dst.Logs.ApplyOrigin(ctx, origin, append(batch, rest...), upTo2); err != nil {
		t.Fatal(err)
	}
	page, err := dst.Logs.Query(ctx, flowg.Query{Stream: "app", Limit: 100})
	if err != nil || len(page.Records) != 10 {
		t.Fatalf("dst holds %d records: %v", len(page.Records), err)
	}
	if _, err := dst.Logs.ApplyOrigin(ctx, dst.Logs.Origin(), batch, 4); err == nil {
		t.Fatal("records of the node's own origin accepted from another")
	}

	// Purge on dst; src's purge marks reach a third node that then gets
	// the records late: they are dropped.
	if err := dst.Logs.Purge(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	es, _ := dst.MetaEntries()
	late := storetest.Open(t, named("late"))
	if _, err := late.ApplyMeta(es); err != nil {
		t.Fatal(err)
	}
	all, upTo3, _ := src.Logs.ReadOrigin(origin, 0, 100, 1<<20)
	n, err := late.Logs.ApplyOrigin(ctx, origin, all, upTo3)
	if err != nil || n != 0 {
		t.Fatalf("late records a purge covered: %d stored (%v)", n, err)
	}
	// src applies the purge: its own records go too.
	if _, err := src.ApplyMeta(es); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Logs.Query(ctx, flowg.Query{Stream: "app"}); err == nil {
		t.Fatal("the purged stream is still on src")
	}
	left, upTo4, _ := src.Logs.ReadOrigin(origin, 0, 100, 1<<20)
	if len(left) != 0 || upTo4 != 10 {
		t.Fatalf("after the purge ReadOrigin gives %d records up to %d, want none up to 10", len(left), upTo4)
	}
}

// TestReplaceMeta: a node that resyncs takes another's entries exactly:
// its own extra role goes, the cluster's settings apply, and the index of a
// field indexed only in the cluster's settings is built over its records.
func TestReplaceMeta(t *testing.T) {
	ctx := context.Background()
	src, dst := storetest.Open(t, named("src")), storetest.Open(t, named("dst"))
	if err := src.Logs.PutSettings(ctx, "app", flowg.StreamSettings{IndexedFields: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	if err := dst.Auth.PutRole("stale", nil); err != nil {
		t.Fatal(err)
	}
	recs := []flowg.Record{{Timestamp: time.Now(), Fields: map[string]string{"b": "x"}}, {Timestamp: time.Now(), Fields: map[string]string{"b": "y"}}}
	if err := dst.Logs.Append(ctx, "app", recs); err != nil {
		t.Fatal(err)
	}
	es, err := src.MetaEntries()
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.ReplaceMeta(es); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Auth.Role("stale"); err == nil {
		t.Error("the resynced node keeps a role the cluster does not have")
	}
	st, err := dst.Logs.Settings("app")
	if err != nil || !slices.Equal(st.IndexedFields, []string{"b"}) {
		t.Fatalf("settings after the resync: %+v, %v", st, err)
	}
	f, _ := filter.Parse(`b = "x"`)
	page, err := dst.Logs.Query(ctx, flowg.Query{Stream: "app", Filter: f})
	if err != nil || len(page.Records) != 1 || page.Records[0].Fields["b"] != "x" {
		t.Fatalf("indexed query after the resync: %+v, %v", page.Records, err)
	}
}

// TestLargeRequests_CommittedInParts: at the smallest memory budget a
// transaction holds about 2.4 MB; an 8 MB ingest request of 8 KB records is
// committed whole all the same (in parts, answered once all are in), and a
// replica at the same budget applies it from a batch too large for one
// transaction.
func TestLargeRequests_CommittedInParts(t *testing.T) {
	small := func(c *store.Config) { c.MemoryBudget = 128 << 20 }
	a := storetest.Open(t, named("a"), small)
	b := storetest.Open(t, named("b"), small)
	ctx := context.Background()
	recs := make([]flowg.Record, 1000)
	for i := range recs {
		recs[i] = flowg.Record{Timestamp: time.Now(), Fields: map[string]string{"level": "info", "n": strconv.Itoa(i), "message": strings.Repeat("m", 8<<10)}}
	}
	if err := a.Logs.Append(ctx, "big", recs); err != nil {
		t.Fatal(err)
	}
	if got := a.Logs.Usage("big").Records; got != 1000 {
		t.Fatalf("stored %d of 1000 records", got)
	}
	batch, upTo, err := a.Logs.ReadOrigin(a.Logs.Origin(), 0, 5000, 64<<20)
	if err != nil || len(batch) != 1000 {
		t.Fatalf("read %d records, %v", len(batch), err)
	}
	if n, err := b.Logs.ApplyOrigin(ctx, a.Logs.Origin(), batch, upTo); err != nil || n != 1000 {
		t.Fatalf("applied %d, %v", n, err)
	}
	if got := b.Logs.Heads()[a.Logs.Origin()]; got != upTo {
		t.Fatalf("mark %d after the apply, want %d", got, upTo)
	}
}
