package node

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/discovery"
	"github.com/flowg-server/flowg-server/httpapi"
	"github.com/flowg-server/flowg-server/internal/flagvalue"
	"github.com/flowg-server/flowg-server/internal/tlsfiles"
	"github.com/flowg-server/flowg-server/replica"
	"github.com/flowg-server/flowg-server/serfnet"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/syslog"
)

// DefaultConfig returns the documented defaults: every flag's default.
func DefaultConfig() Config {
	return Config{
		HTTPBind: ":5080", MgmtBind: ":9113",
		Store: store.DefaultConfig(), Syslog: syslog.DefaultConfig(), Cluster: serfnet.DefaultConfig(),
		Replica: replica.DefaultConfig(), Discovery: discovery.DefaultConfig(), Connect: defaultConnect(),
		CopyTimeout: 2 * time.Second,
		Limits: Limits{
			HTTP: httpapi.ConnLimits{Max: 4096, PerClient: 256}, Mgmt: httpapi.ConnLimits{Max: 1024, PerClient: 256},
			API: httpapi.DefaultLimits(),
		},
		RetentionEvery: time.Minute, GCEvery: 10 * time.Minute, ShutdownTimeout: 30 * time.Second,
	}
}

// RegisterFlags registers every flag of a node: its own and, through their
// RegisterFlags, those of the packages it is made of.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.NodeID, "cluster-node-id", c.NodeID, "this node's ID (default: generated once and kept in the cluster state dir)")
	c.Cluster.RegisterFlags(fs)
	c.Discovery.RegisterFlags(fs)
	c.Connect.RegisterFlags(fs)
	fs.DurationVar(&c.CopyTimeout, "ingest-copy-timeout", c.CopyTimeout, "how long an HTTP ingest request waits, once committed, for another alive node to hold its records before it is answered (0: answer once committed here)")
	c.Replica.RegisterFlags(fs)
	fs.StringVar(&c.StateDir, "cluster-state-dir", c.StateDir, "node identity and cluster state (default: <parent of the data dirs>/state)")
	fs.StringVar(&c.Advertise, "cluster-advertise", c.Advertise, "address other nodes reach this node's management port at (default: from --mgmt-bind)")
	c.Store.RegisterFlags(fs)
	fs.DurationVar(&c.RetentionEvery, "log-retention-interval", c.RetentionEvery, "how often retention runs")
	fs.DurationVar(&c.GCEvery, "log-gc-interval", c.GCEvery, "how often value-log garbage collection runs")
	fs.StringVar(&c.HTTPBind, "http-bind", c.HTTPBind, "address of the public HTTP API")
	c.HTTPTLSFiles.RegisterFlags(fs, "http", "the public API", false)
	fs.StringVar(&c.MgmtBind, "mgmt-bind", c.MgmtBind, "address of the management API (health, metrics, cluster)")
	c.MgmtTLSFiles.RegisterFlags(fs, "mgmt", "the management API", true)
	fs.StringVar(&c.MgmtCA, "mgmt-tls-ca", c.MgmtCA, "PEM CA bundle that other nodes' management certificates are checked against (default: the system's)")
	c.Syslog.RegisterFlags(fs)
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long shutdown waits for in-flight requests")
	fs.BoolVar(&c.Pprof, "mgmt-pprof", c.Pprof, "serve Go's CPU, heap and goroutine profiles under /debug/pprof/ on the management port")
	c.Limits.HTTP.RegisterFlags(fs, "http", "the public API")
	c.Limits.Mgmt.RegisterFlags(fs, "mgmt", "the management API")
	fs.Var((*flagvalue.ByteSize)(&c.Limits.MemoryBudget), "memory-limit", "memory budget of the node, e.g. 1GiB: the Go memory limit, Badger's caches and memtables and the ingest in flight are sized from it (default: 80% of the cgroup's memory limit when there is one, else 512MiB)")
	fs.Var((*flagvalue.ByteSize)(&c.Limits.IngestInFlight), "ingest-max-inflight", "bytes of ingest request bodies being read and stored at once; beyond it ingest answers 429 with Retry-After (default: an eighth of --memory-limit)")
	c.Limits.API.RegisterFlags(fs)
}

// Validate checks every value, the packages' through their Validate; each
// error names its flag. It touches nothing on disk: directories are made
// at start.
func (c Config) Validate() error {
	for _, b := range []struct{ flag, addr string }{{"--http-bind", c.HTTPBind}, {"--mgmt-bind", c.MgmtBind}} {
		if err := flagvalue.CheckHostPort(b.addr); err != nil {
			return fmt.Errorf("%s %q: %w", b.flag, b.addr, err)
		}
	}
	if c.NodeID != "" {
		if err := flowg.ValidateNodeID(c.NodeID); err != nil {
			return fmt.Errorf("--cluster-node-id %w", err)
		}
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil && net.ParseIP(c.Advertise) == nil {
			return fmt.Errorf("--cluster-advertise %q: not an IP or host:port", c.Advertise)
		}
	}
	switch {
	case c.CopyTimeout < 0:
		return fmt.Errorf("--ingest-copy-timeout %s: must not be negative", c.CopyTimeout)
	case c.RetentionEvery < time.Second:
		return fmt.Errorf("--log-retention-interval %s: must be at least 1s", c.RetentionEvery)
	case c.GCEvery < time.Second:
		return fmt.Errorf("--log-gc-interval %s: must be at least 1s", c.GCEvery)
	case c.ShutdownTimeout <= 0:
		return fmt.Errorf("--shutdown-timeout %s: must be positive", c.ShutdownTimeout)
	case c.Limits.MemoryBudget != 0 && c.Limits.MemoryBudget < 128<<20:
		return fmt.Errorf("--memory-limit %s: must be at least 128MiB", (*flagvalue.ByteSize)(&c.Limits.MemoryBudget))
	case c.Limits.IngestInFlight != 0 && c.Limits.IngestInFlight < 1<<20:
		return fmt.Errorf("--ingest-max-inflight %s: must be at least 1MiB", (*flagvalue.ByteSize)(&c.Limits.IngestInFlight))
	case c.MgmtCA != "" && !c.MgmtTLSFiles.On:
		return errors.New("--mgmt-tls-ca needs --mgmt-tls")
	}
	return first(
		c.Connect.validate(c.Discovery.Consul.Enabled(), c.MgmtTLSFiles.On),
		c.HTTPTLSFiles.Validate(), c.MgmtTLSFiles.Validate(),
		c.Limits.HTTP.Validate("http"), c.Limits.Mgmt.Validate("mgmt"), c.Limits.API.Validate(),
		c.Store.Validate(), c.Syslog.Validate(), c.Cluster.Validate(), c.Replica.Validate(), c.Discovery.Validate(),
	)
}

// first is the first error of errs, or nil: a bad command line is told
// one thing at a time, on one line.
func first(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// loadTLS reads the listeners' certificates, unless set already.
func (c *Config) loadTLS() error {
	var err error
	if c.HTTPTLS == nil {
		if c.HTTPTLS, err = c.HTTPTLSFiles.Load(); err != nil {
			return err
		}
	}
	if c.MgmtTLS == nil {
		if c.MgmtTLS, err = c.MgmtTLSFiles.Load(); err != nil {
			return err
		}
	}
	if c.MgmtClientTLS == nil && c.MgmtTLS != nil {
		// Other nodes' CA (else the system's) and this node's own
		// certificate, for mutual TLS.
		c.MgmtClientTLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: c.MgmtTLS.Certificates}
		if c.MgmtCA != "" {
			if c.MgmtClientTLS.RootCAs, err = tlsfiles.LoadPool(c.MgmtCA); err != nil {
				return fmt.Errorf("--mgmt-tls-ca: %w", err)
			}
		}
	}
	return nil
}

// makeDirs creates the state and data directories (the state directory
// derived when not given) and checks that each is writable.
func (c *Config) makeDirs() error {
	if c.StateDir == "" {
		c.StateDir = defaultStateDir(c.Store.AuthDir, c.Store.LogDir, c.Store.ConfigDir)
	}
	for _, d := range []struct{ flag, dir string }{
		{"--auth-dir", c.Store.AuthDir}, {"--log-dir", c.Store.LogDir}, {"--config-dir", c.Store.ConfigDir}, {"--cluster-state-dir", c.StateDir},
	} {
		if err := checkDir(d.dir); err != nil {
			return fmt.Errorf("%s %q: %w", d.flag, d.dir, err)
		}
	}
	return nil
}

// defaultStateDir puts the cluster state beside the data directories: in
// their common parent when they share one (./data/node0/{auth,logs,config}
// gives ./data/node0/state), else beside the auth directory, which no two
// nodes can share.
func defaultStateDir(auth, logs, cfg string) string {
	p := filepath.Dir(filepath.Clean(auth))
	if filepath.Dir(filepath.Clean(logs)) == p && filepath.Dir(filepath.Clean(cfg)) == p {
		return filepath.Join(p, "state")
	}
	return filepath.Clean(auth) + ".state"
}

// checkDir creates dir if need be and checks that it is a writable directory.
func checkDir(dir string) error {
	if dir == "" {
		return errors.New("must not be empty")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("cannot create: %w", errors.Unwrap(err))
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("not writable: %w", errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}
