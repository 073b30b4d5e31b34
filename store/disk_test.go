package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	flowg "github.com/flowg-server/flowg-server"
)

// smallFS mounts a tmpfs of size bytes for the test (root only: the tests
// run as root, as CI does) and unmounts it at the end.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("this test mounts a small file system and needs root: mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill takes the free space of dir's file system down to about leave
// bytes, with a file that freeSpace removes.
func fill(t *testing.T, dir string, leave uint64) (freeSpace func()) {
	t.Helper()
	free, _, err := statfs(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("filler-%d", time.Now().UnixNano()))
	if free > leave {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 1<<20)
		for n := free - leave; n > 0; {
			k := min(n, uint64(len(chunk)))
			if _, err := f.Write(chunk[:k]); err != nil {
				break
			}
			n -= k
		}
		f.Close()
	}
	return func() { os.Remove(path) }
}

// TestDiskFull_RefusedNotCrashed: on a 256 MiB file system, records are
// taken until the free space reaches the reserve, then refused with
// ErrDiskFull while queries go on; the node does not crash (Badger would
// SIGBUS writing its mmapped files on a full disk), nothing of a refused
// batch is stored, it reopens on the full disk, and writes resume by
// themselves once space is freed.
func TestDiskFull_RefusedNotCrashed(t *testing.T) {
	dir := smallFS(t, "256m")
	c := testConfig(t, t.TempDir())
	c.LogDir = filepath.Join(dir, "logs")
	st, err := Open(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	g := st.Logs.disk
	if g.reserve > 128<<20 {
		t.Fatalf("reserve %d does not fit a 256 MiB volume", g.reserve)
	}
	freeSpace := fill(t, dir, g.reserve+24<<20)
	ctx := context.Background()
	batch := func(i int) []flowg.Record {
		recs := make([]flowg.Record, 500)
		for j := range recs {
			recs[j] = flowg.Record{Timestamp: time.Now(), Fields: map[string]string{
				// Random text: blocks compress what repeats.
				"level": "info", "message": fmt.Sprintf("%d-%d %s", i, j, base64.StdEncoding.EncodeToString(randomBytes(300)))}}
		}
		return recs
	}
	stored, refusedAt := 0, -1
	for i := range 400 {
		err := st.Logs.Append(ctx, "app", batch(i))
		if errors.Is(err, flowg.ErrDiskFull) {
			refusedAt = i
			break
		}
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		stored += 500
	}
	if refusedAt < 0 {
		t.Fatalf("%d records taken and the disk never full", stored)
	}
	if got := st.Logs.Usage("app").Records; got != int64(stored) {
		t.Fatalf("%d records stored after the refusal, want the %d acknowledged", got, stored)
	}
	page, err := st.Logs.Query(ctx, flowg.Query{Stream: "app", Limit: 10})
	if err != nil || len(page.Records) != 10 {
		t.Fatalf("query on a full disk: %d records, %v", len(page.Records), err)
	}
	if p := st.Problems(); len(p) == 0 || !strings.Contains(p[0], "free") {
		t.Fatalf("problems on a full disk: %v", p)
	}
	t.Logf("refused after %d records with %s", stored, g.err)

	// A restart on the full disk opens and serves reads.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(ctx, c)
	if err != nil {
		t.Fatalf("reopen on a full disk: %v", err)
	}
	defer st.Close()
	if got := st.Logs.Usage("app").Records; got != int64(stored) {
		t.Fatalf("%d records after the restart, want %d", got, stored)
	}
	// Closing flushed the memtable and freed its log: fill again.
	freeMore := fill(t, dir, g.reserve/2)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = Open(ctx, c); err != nil {
		t.Fatalf("start on a full disk: %v", err)
	}
	defer st.Close()
	if page, err := st.Logs.Query(ctx, flowg.Query{Stream: "app", Limit: 10}); err != nil || len(page.Records) != 10 {
		t.Fatalf("query after a start on a full disk: %d records, %v", len(page.Records), err)
	}
	if err := st.Logs.Append(ctx, "app", batch(-1)); !errors.Is(err, flowg.ErrDiskFull) {
		t.Fatalf("append after a start on a full disk: %v", err)
	}
	freeSpace()
	freeMore()
	time.Sleep(2 * diskRecheck)
	if err := st.Logs.Append(ctx, "app", batch(-2)); err != nil {
		t.Fatalf("append once space is back: %v", err)
	}
	if p := st.Problems(); len(p) != 0 {
		t.Fatalf("problems once space is back: %v", p)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
