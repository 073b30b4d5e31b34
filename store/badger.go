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

// badgerLogger bridges Badger's logger into slog. Badger is chatty at info
// level, so its info lines go to debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(trim(f, a)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(trim(f, a)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug(trim(f, a)) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Debug(trim(f, a)) }

func trim(f string, a []any) string { return strings.TrimSpace(fmt.Sprintf(f, a...)) }
