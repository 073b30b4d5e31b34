package store

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// openBadger opens (creating it if need be) the database in dir.
func openBadger(dir string, syncWrites bool, log *slog.Logger, tune func(*badger.Options)) (*badger.DB, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create %q: %w", dir, err)
	}
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(syncWrites).
		WithLogger(badgerLogger{log}).
		WithNumVersionsToKeep(1)
	if tune != nil {
		tune(&opts)
	}
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot open database at %q: %w", dir, err)
	}
	return db, nil
}

// DefaultMemoryBudget is the memory budget of the stores when none is
// given.
const DefaultMemoryBudget = 512 << 20

// logDBOptions sizes the log database from the node's memory budget.
// Badger's defaults (up to seven 64 MiB memtables, a 256 MiB block cache,
// four compactors) make a node of three databases grow past 1.3 GB under
// ingest. A budget B gives:
//
//   - memtables of B/16, from 16 MiB to 128 MiB (32 MiB at the default
//     512 MiB), at most three at once (one taking writes, one being
//     flushed, one waiting for it), each with its log file mapped in
//     memory: a transaction may take 15% of a memtable (4.8 MiB at the
//     default); a larger request is committed in several (commitParts);
//   - a block cache and an index cache of B/32 each (table indexes
//     evicted rather than all held in memory);
//   - two compactors, with Badger's 2 MiB base table size: a compaction
//     runs up to eight table builders at once, each holding twice its
//     table size in memory (8 MiB tables took 256 MiB).
//
// On a file system too small for these (see fitVolume), memtables and
// value-log files shrink to fit it.
func logDBOptions(o *badger.Options, budget int64) {
	o.MemTableSize = min(max(budget/16, 16<<20), 128<<20)
	o.NumMemtables = 1 // waiting for a flush, beside the one flushed and the one written
	o.BlockCacheSize = budget / 32
	o.IndexCacheSize = budget / 32
	o.NumCompactors = 2
	// Rows (a few hundred bytes) stay in the LSM tree; blocks (tens of
	// KiB, compressed already) go to the value log, so that compactions
	// do not rewrite them and a scan of block keys does not read them.
	o.ValueThreshold = blockValueThreshold
}

// blockValueThreshold is the value size from which the log database keeps
// a value in its value log.
const blockValueThreshold = 16 << 10

// badgerLogger bridges Badger's logger into slog. Badger is chatty at info
// level, so its info lines go to debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(trim(f, a)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(trim(f, a)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug(trim(f, a)) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug(trim(f, a)) }

func trim(f string, a []any) string { return strings.TrimSpace(fmt.Sprintf(f, a...)) }
