package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/httpapi"
	"github.com/flowg-server/flowg-server/internal/testwait"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/store/storetest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testConfig is a whole node's configuration on loopback ports under dir.
func testConfig(t *testing.T, dir string) Config {
	t.Helper()
	c := DefaultConfig()
	c.NodeID, c.StateDir = "n0", filepath.Join(dir, "state")
	c.HTTPBind, c.MgmtBind = freeAddr(t), freeAddr(t)
	c.Store = storetest.Config(dir)
	c.Limits.HTTP, c.Limits.Mgmt = httpapi.ConnLimits{Max: 64, PerClient: 64}, httpapi.ConnLimits{Max: 64, PerClient: 64}
	c.ShutdownTimeout = 5 * time.Second
	c.Logger = slog.New(slog.DiscardHandler)
	c.Syslog.Bind, c.Syslog.Protocol = freeAddr(t), "tcp"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// free reports whether addr can be listened on again.
func free(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestRun_StartFailuresLeaveNothingOpen: whichever component fails to
// start, Run returns its error and leaves nothing behind: the ports are
// free, the stores closed (they open again), the state directory
// unlocked, and no goroutine is left.
func TestRun_StartFailuresLeaveNothingOpen(t *testing.T) {
	for _, c := range []struct {
		name   string
		break_ func(t *testing.T, cfg *Config) (undo func())
		want   string
	}{
		{"state directory locked", func(t *testing.T, cfg *Config) func() {
			os.MkdirAll(cfg.StateDir, 0o755)
			f, err := lockStateDir(cfg.StateDir)
			if err != nil {
				t.Fatal(err)
			}
			return func() { f.Close() }
		}, "another flowg-server process"},
		{"public port in use", func(t *testing.T, cfg *Config) func() { return hold(t, cfg.HTTPBind) }, "--http-bind"},
		{"management port in use", func(t *testing.T, cfg *Config) func() { return hold(t, cfg.MgmtBind) }, "--mgmt-bind"},
		{"log directory is a file", func(t *testing.T, cfg *Config) func() {
			os.MkdirAll(filepath.Dir(cfg.Store.LogDir), 0o755)
			os.WriteFile(cfg.Store.LogDir, []byte("x"), 0o644)
			return func() { os.Remove(cfg.Store.LogDir) }
		}, "--log-dir"},
		{"stores held by another process", func(t *testing.T, cfg *Config) func() {
			st, err := store.Open(context.Background(), cfg.Store)
			if err != nil {
				t.Fatal(err)
			}
			return func() { st.Close() }
		}, "store"},
		{"syslog port in use", func(t *testing.T, cfg *Config) func() { return hold(t, cfg.Syslog.Bind) }, "--syslog-bind"},
		{"advertise address unresolvable", func(t *testing.T, cfg *Config) func() {
			cfg.Advertise = "no-such-host.invalid:1"
			return func() {}
		}, "--cluster-advertise"},
		{"cookie too short", func(t *testing.T, cfg *Config) func() {
			cfg.Cluster.Cookie = "short"
			return func() {}
		}, "cookie"},
		{"Consul source refused (the last component)", func(t *testing.T, cfg *Config) func() {
			cfg.Discovery.Consul.Address, cfg.Discovery.Consul.Service = "http://127.0.0.1:1", "not a name"
			return func() {}
		}, "--cluster-consul-service"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			dir := t.TempDir()
			cfg := testConfig(t, dir)
			undo := c.break_(t, &cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := New(cfg).Run(ctx)
			undo()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run = %v, want an error about %q", err, c.want)
			}
			for _, a := range []string{cfg.HTTPBind, cfg.MgmtBind, cfg.Syslog.Bind} {
				if !free(a) {
					t.Errorf("%s is still bound", a)
				}
			}
			os.MkdirAll(cfg.StateDir, 0o755) // a start that failed early made none
			f, lerr := lockStateDir(cfg.StateDir)
			if lerr != nil {
				t.Errorf("state directory still locked: %v", lerr)
			} else {
				f.Close()
			}
			if st, err := store.Open(context.Background(), storetest.Config(dir)); err != nil && c.name != "log directory is a file" {
				t.Errorf("stores still open: %v", err)
			} else if err == nil {
				st.Close()
			}
			testwait.Goroutines(t, before, 3*time.Second)
		})
	}
}

// hold keeps addr bound until the returned func is called.
func hold(t *testing.T, addr string) func() {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return func() { ln.Close() }
}

// TestRun_ServesAndStops: a node started with every component serves
// /ready, takes a record, and stops on cancel leaving its ports free.
func TestRun_ServesAndStops(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := testConfig(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(cfg).Run(ctx) }()
	waitReady(t, cfg.MgmtBind)
	resp, err := http.Post("http://"+cfg.HTTPBind+"/api/v1/auth/login", "application/json", strings.NewReader(`{"username":"root","password":"root"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login: %v %v", resp, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
	for _, a := range []string{cfg.HTTPBind, cfg.MgmtBind, cfg.Syslog.Bind} {
		if !free(a) {
			t.Errorf("%s is still bound", a)
		}
	}
	testwait.Goroutines(t, before, 3*time.Second)
}
