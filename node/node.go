package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowg-server/flowg-server/discovery"
	"github.com/flowg-server/flowg-server/httpapi"
	"github.com/flowg-server/flowg-server/internal/tlsfiles"
	"github.com/flowg-server/flowg-server/mesh"
	"github.com/flowg-server/flowg-server/replica"
	"github.com/flowg-server/flowg-server/serfnet"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/syslog"
)

// Config is everything one node is made of. Each package's part registers
// its own flags and checks itself (RegisterFlags, Validate); the fields a
// component takes from the node (its node ID, logger, metrics registry,
// memory budget, addresses) are filled in at start.
type Config struct {
	// NodeID is this node's ID; empty takes the one kept in StateDir, or a
	// new one, which is then kept.
	NodeID string
	// StateDir holds the node ID, the Serf snapshot and the last-seen
	// time; it is locked while the node runs. Empty puts it beside the
	// data directories (see defaultStateDir).
	StateDir string
	// Version is logged at start.
	Version string

	// HTTPBind and MgmtBind are the public and management addresses.
	HTTPBind, MgmtBind string
	// HTTPTLSFiles and MgmtTLSFiles are the listeners' TLS flags; MgmtCA
	// is the CA bundle other nodes' management certificates are checked
	// against (default: the system's).
	HTTPTLSFiles, MgmtTLSFiles tlsfiles.Server
	MgmtCA                     string
	// HTTPTLS, MgmtTLS and MgmtClientTLS, when set, are used instead of
	// the ones loaded from the files (tests, embedding). MgmtClientTLS is
	// how this node reaches the others' management ports over TLS.
	HTTPTLS, MgmtTLS, MgmtClientTLS *tls.Config
	// Advertise overrides the management address peers reach (IP or
	// IP:port); empty derives it from MgmtBind.
	Advertise string

	// Store: directories, sync writes, initial user. The node fills in
	// NodeID, MemoryBudget, Logger and Registerer.
	Store store.Config
	// Syslog: bind, protocol, TLS, stream, origins, limits. The node fills
	// in Logger and Registerer.
	Syslog syslog.Config
	// Cluster: cookie, previous cookie, cluster name. The node fills in the
	// rest.
	Cluster serfnet.Config
	// Replica: tombstone window. The node fills in the rest.
	Replica replica.Config
	// Discovery: the join peer, DNS SRV and Consul sources.
	Discovery discovery.Config
	// Connect: Consul Connect native service (--consul-connect-*).
	Connect ConnectConfig
	// CopyTimeout is how long an acknowledged ingest waits for a second
	// copy (0: answer once committed here).
	CopyTimeout time.Duration

	// Limits bound clients.
	Limits Limits
	// RetentionEvery and GCEvery time the store's maintenance.
	RetentionEvery, GCEvery time.Duration
	// ShutdownTimeout bounds the shutdown (see Run).
	ShutdownTimeout time.Duration
	// Pprof serves Go's profiles under /debug/pprof/ on the management
	// port (--mgmt-pprof).
	Pprof bool

	Logger *slog.Logger
}

// Limits bound what clients hold of a node.
type Limits struct {
	HTTP, Mgmt httpapi.ConnLimits
	// API: the login throttle. The node fills in MaxIngestInFlight.
	API httpapi.Limits
	// MemoryBudget: 0 derives it (see memoryBudget).
	MemoryBudget int64
	// IngestInFlight: 0 is an eighth of the memory budget.
	IngestInFlight int64
}

// connLimits are the three listeners' connection limits, fitted to the
// open-file limit together.
type connLimits struct {
	httpConns, httpConnsPerClient     int
	mgmtConns, mgmtConnsPerClient     int
	syslogConns, syslogConnsPerClient int
}

// Node is one running node. New builds nothing; Run does the work.
type Node struct {
	cfg Config
	log *slog.Logger
	reg *prometheus.Registry

	// What the components make, in start order.
	lock           *os.File
	id             string
	httpLn, mgmtLn net.Listener
	budget         int64
	st             *store.Store
	sl             *syslog.Server
	cluster        *serfnet.Cluster
	rep            *replica.Replicator
	api            *httpapi.API
	public, mgmt   *http.Server
	endpoint       string
	consul         *discovery.Consul
	mesh           *mesh.Mesh     // nil unless --consul-connect
	meshLn         net.Listener   // the API's Connect port
	meshSl         *syslog.Server // the syslog Connect port
	meshAPI        *http.Server
	single         prometheus.Counter // ingest answered with one copy
	errc           chan error         // a server that failed
	stops          map[string]func()
	dones          map[string]chan struct{}
}

// New returns a node for cfg; nothing starts until Run.
func New(cfg Config) *Node {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	return &Node{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry(), errc: make(chan error, 2),
		stops: map[string]func(){}, dones: map[string]chan struct{}{}}
}

// component is one part of the node: start makes and starts it, stop
// undoes that. A component whose start failed is not stopped.
type component struct {
	name  string
	start func(ctx context.Context) error
	stop  func(ctx context.Context) error
}

// Run starts the components in order; on the first error it stops the
// ones started, in reverse, and returns the error. Once all are up the
// node is ready, and it serves until ctx ends or a server fails; then it
// stops every component in reverse order: stop discovery and deregister
// from Consul, stop taking ingest and end live tails, close the syslog
// listener once what it read is stored, wait (up to 10 s) until the peers
// hold this node's records, stop replication, leave the cluster, stop
// gossip, stop maintenance, stop the public and management servers once
// in-flight requests are done, close the stores, release the state
// directory. The log gives each step and how long it took. Each step ends
// within ShutdownTimeout; one still running then gets a short grace and
// is left behind with an error.
func (n *Node) Run(ctx context.Context) error {
	comps := n.components()
	for i, c := range comps {
		if err := c.start(ctx); err != nil {
			n.stopAll(comps[:i], false)
			return err
		}
	}
	n.api.SetReady(true)
	n.log.Info("serving", "http", n.httpLn.Addr().String(), "mgmt", n.mgmtLn.Addr().String(), "endpoint", n.endpoint)
	var runErr error
	select {
	case <-ctx.Done():
		n.log.Info("shutting down")
	case runErr = <-n.errc:
		n.log.Error("a listener failed; shutting down", "err", runErr)
	}
	return errors.Join(runErr, n.stopAll(comps, true))
}

// stopAll stops comps in reverse order. At shutdown (logged true) each
// step is logged with its duration and bounded by ShutdownTimeout; after a
// failed start they are stopped quietly.
func (n *Node) stopAll(comps []component, logged bool) error {
	sctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	for i := len(comps) - 1; i >= 0; i-- {
		c := comps[i]
		if c.stop == nil {
			continue
		}
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- c.stop(sctx) }()
		var err error
		select {
		case err = <-done:
		case <-sctx.Done():
			grace := 200 * time.Millisecond
			if c.name == "close stores" {
				grace = 5 * time.Second
			}
			select {
			case err = <-done:
			case <-time.After(grace):
				err = fmt.Errorf("shutdown step %q did not end within the shutdown timeout %s; left behind", c.name, n.cfg.ShutdownTimeout)
			}
		}
		switch {
		case err != nil:
			n.log.Error("shutdown step failed", "step", c.name, "err", err)
			errs = append(errs, err)
		case logged:
			n.log.Info("shutdown step done", "step", c.name, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	return errors.Join(errs...)
}

// goStop runs fn in a goroutine under name; stopping name cancels its
// context and waits for it to return.
func (n *Node) goStop(name string, fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n.stops[name], n.dones[name] = cancel, done
	go func() { defer close(done); fn(ctx) }()
}

func (n *Node) waitStop(name string) {
	if cancel := n.stops[name]; cancel != nil {
		cancel()
		<-n.dones[name]
	}
}
