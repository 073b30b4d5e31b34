// Package storetest opens real stores in temporary directories for the
// tests and benchmarks of other packages.
package storetest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/flowg-server/flowg-server/store"
)

// Config is store.DefaultConfig with its directories under dir, a cheap
// password hash and a silent logger.
func Config(dir string) store.Config {
	c := store.DefaultConfig()
	c.AuthDir, c.LogDir, c.ConfigDir = dir+"/auth", dir+"/logs", dir+"/config"
	c.Argon2 = store.Argon2Params{Time: 1, Memory: 64, Threads: 1}
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

// Open opens a store in a temporary directory, closed when the test ends.
// mutate, when given, changes the config first.
func Open(tb testing.TB, mutate ...func(*store.Config)) *store.Store {
	tb.Helper()
	c := Config(tb.TempDir())
	for _, m := range mutate {
		m(&c)
	}
	st, err := store.Open(context.Background(), c)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}
