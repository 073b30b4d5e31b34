package store

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dustin/go-humanize"

	flowg "github.com/flowg-server/flowg-server"
)

// diskGuard refuses writes while the file system of a database has less
// free space than a reserve, before Badger writes into memory-mapped files
// it cannot grow: Badger's memtable log, tables and value log are sparse
// mmapped files, and a write into one on a full disk is a SIGBUS that
// kills the process (and again at every restart). Refused writes get
// flowg.ErrDiskFull (507 over HTTP); reads go on; writes resume by
// themselves once space returns. The state changes are logged once each.
type diskGuard struct {
	dir     string
	db      string
	reserve uint64
	log     *slog.Logger
	statfs  func(dir string) (free, total uint64, err error)

	mu      sync.Mutex
	checked time.Time
	err     error // the answer of the last check

	full atomic.Bool
	free atomic.Uint64
}

// diskRecheck is how long one free-space reading answers for.
const diskRecheck = 50 * time.Millisecond

func newDiskGuard(db, dir string, reserve uint64, log *slog.Logger) *diskGuard {
	return &diskGuard{db: db, dir: dir, reserve: reserve, log: log, statfs: statfs}
}

// statfs reads the space free to unprivileged users and the size of the
// file system holding dir.
func statfs(dir string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// check returns flowg.ErrDiskFull (with the figures) while the free space
// is under the reserve.
func (g *diskGuard) check() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if now.Sub(g.checked) < diskRecheck {
		return g.err
	}
	g.checked = now
	free, _, err := g.statfs(g.dir)
	if err != nil {
		g.err = nil // cannot tell: let Badger try
		return nil
	}
	g.free.Store(free)
	if free < g.reserve {
		g.err = fmt.Errorf("%w: %s free at %s, under the %s kept for the %s database's own files; writes resume once space is freed",
			flowg.ErrDiskFull, humanize.IBytes(free), g.dir, humanize.IBytes(g.reserve), g.db)
		if !g.full.Swap(true) {
			g.log.Error("disk full: refusing writes (507) until space is freed; reads go on", "dir", g.dir,
				"free", humanize.IBytes(free), "reserve", humanize.IBytes(g.reserve))
		}
		return g.err
	}
	g.err = nil
	if g.full.Swap(false) {
		g.log.Info("disk space is back: writes resume", "dir", g.dir, "free", humanize.IBytes(free))
	}
	return nil
}

// fitVolume sizes a log database's files to its file system: memtables of
// at most a 32nd of the volume (a 300 MB volume gets 8 MiB memtables),
// value-log files of at most an eighth, and the reserve of free space
// writes stop at: four memtables (the one taking writes, the table its
// flush writes, and room for a compaction) and 16 MiB. It returns the
// reserve.
func fitVolume(memtable, vlogFile *int64, total uint64) uint64 {
	if total > 0 {
		*memtable = min(*memtable, max(int64(total/32), 4<<20))
		*vlogFile = min(*vlogFile, max(int64(total/8), 16<<20))
	}
	return 4*uint64(*memtable) + 16<<20
}
