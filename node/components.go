package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/discovery"
	"github.com/flowg-server/flowg-server/httpapi"
	"github.com/flowg-server/flowg-server/replica"
	"github.com/flowg-server/flowg-server/serfnet"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/syslog"
)

// components are the node's parts in start order; their stops, run in
// reverse, are the shutdown order Run documents.
func (n *Node) components() []component {
	c := n.cfg
	return []component{
		{name: "release the state directory", start: n.startState, stop: func(context.Context) error { return n.lock.Close() }},
		// Listen first, so that a port in use fails the start before any
		// database is opened.
		{name: "close the listeners", start: n.startListeners, stop: func(context.Context) error {
			return errors.Join(ignoreClosed(n.httpLn.Close()), ignoreClosed(n.mgmtLn.Close()))
		}},
		// The mesh's certificates before anything is opened: a node told
		// to join the mesh does not start without them.
		{name: "stop the mesh", start: n.startMesh, stop: n.stopMesh},
		{name: "close stores", start: n.startStores, stop: func(context.Context) error { return n.st.Close() }},
		// Syslog binds after the stores (a message read is a message to
		// store) and before the cluster, whose tags carry its address; it
		// serves last and closes first (see "stop syslog" below).
		{name: "close the syslog listener", start: n.startSyslogListener, stop: n.closeSyslog},
		{name: "stop management API", start: n.startCluster, stop: func(ctx context.Context) error { return n.mgmt.Shutdown(ctx) }},
		{name: "stop public API", start: n.startPublic, stop: func(ctx context.Context) error {
			err := n.public.Shutdown(ctx)
			if n.meshAPI != nil {
				err = errors.Join(err, n.meshAPI.Shutdown(ctx))
			}
			return err
		}},
		{name: "stop maintenance", start: func(context.Context) error {
			n.goStop("maintenance", func(ctx context.Context) { n.st.Logs.RunMaintenance(ctx, c.RetentionEvery, c.GCEvery) })
			return nil
		}, stop: func(context.Context) error { n.waitStop("maintenance"); return nil }},
		// Gossip starts once the management server that carries it serves.
		{name: "stop gossip", start: func(context.Context) error { return n.cluster.Start() }, stop: func(context.Context) error { return n.cluster.Close() }},
		{name: "leave the cluster", start: func(context.Context) error { return nil }, stop: func(context.Context) error { return n.cluster.Leave() }},
		{name: "stop replication", start: func(context.Context) error {
			n.goStop("replication", func(ctx context.Context) {
				go keepLastSeen(ctx, n.cfg.StateDir, n.log) // set by startState, after c was copied
				n.rep.Run(ctx)
			})
			return nil
		}, stop: func(context.Context) error { n.waitStop("replication"); return nil }},
		{name: "hand over records to peers", start: func(context.Context) error { return nil }, stop: func(ctx context.Context) error {
			hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := n.rep.HandOver(hctx); err != nil {
				// They pull the rest when this node is back.
				n.log.Warn("stopping before every peer holds this node's records", "err", err)
			}
			return nil
		}},
		{name: "stop syslog and store what it read", start: func(context.Context) error {
			n.sl.Serve()
			if n.meshSl != nil {
				n.meshSl.Serve()
			}
			return nil
		}, stop: n.closeSyslog},
		{name: "stop ingest", start: func(context.Context) error { return nil }, stop: func(context.Context) error { n.api.StopIngest(); return nil }},
		// Out of Consul first, so that nothing discovers a node on its way out.
		{name: "stop joining and deregister", start: n.startDiscovery, stop: n.stopDiscovery},
	}
}

func ignoreClosed(err error) error {
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (n *Node) closeSyslog(ctx context.Context) error {
	err := n.sl.Close(ctx)
	if n.meshSl != nil {
		err = errors.Join(err, n.meshSl.Close(ctx))
	}
	return err
}

func (n *Node) startState(context.Context) error {
	if err := n.cfg.makeDirs(); err != nil {
		return err
	}
	if err := n.cfg.loadTLS(); err != nil {
		return err
	}
	c := n.cfg
	lock, err := lockStateDir(c.StateDir)
	if err != nil {
		return fmt.Errorf("--cluster-state-dir %q: %w", c.StateDir, err)
	}
	id, err := nodeIdentity(c.StateDir, c.NodeID, n.log)
	if err != nil {
		lock.Close()
		return fmt.Errorf("--cluster-state-dir %q: cannot keep the node ID: %w", c.StateDir, err)
	}
	n.lock, n.id = lock, id
	n.log = n.log.With("node_id", id)
	n.log.Info("starting flowg-server", "version", c.Version, "auth_dir", c.Store.AuthDir, "log_dir", c.Store.LogDir,
		"config_dir", c.Store.ConfigDir, "state_dir", c.StateDir)
	if c.Cluster.Cookie == "" {
		n.log.Warn("no --cluster-cookie: traffic between nodes is neither encrypted nor authenticated")
	}
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.budget = memoryBudget(n.cfg.Limits.MemoryBudget, n.log)
	return nil
}

func (n *Node) startListeners(context.Context) error {
	c := n.cfg
	lim := connLimits{
		httpConns: c.Limits.HTTP.Max, httpConnsPerClient: c.Limits.HTTP.PerClient,
		mgmtConns: c.Limits.Mgmt.Max, mgmtConnsPerClient: c.Limits.Mgmt.PerClient,
		syslogConns: c.Syslog.MaxConnections, syslogConnsPerClient: c.Syslog.MaxConnectionsPerClient,
	}
	fitConnLimits(&lim, n.log)
	n.cfg.Syslog.MaxConnections, n.cfg.Syslog.MaxConnectionsPerClient = lim.syslogConns, lim.syslogConnsPerClient
	httpLn, err := n.listen("public", "--http-bind", c.HTTPBind, httpapi.ConnLimits{Max: lim.httpConns, PerClient: lim.httpConnsPerClient}, c.HTTPTLS)
	if err != nil {
		return err
	}
	mgmtLn, err := n.listen("mgmt", "--mgmt-bind", c.MgmtBind, httpapi.ConnLimits{Max: lim.mgmtConns, PerClient: lim.mgmtConnsPerClient}, c.MgmtTLS)
	if err != nil {
		httpLn.Close()
		return err
	}
	n.httpLn, n.mgmtLn = httpLn, mgmtLn
	return nil
}

// listen opens the TCP listener of server with its connection limits,
// then TLS when tlsConfig is set.
func (n *Node) listen(server, flagName, addr string, lim httpapi.ConnLimits, tlsConfig *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flagName, addr, err)
	}
	if ln, err = httpapi.LimitListener(ln, server, lim, n.log, n.reg); err != nil {
		ln.Close()
		return nil, err
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	return ln, nil
}

func (n *Node) startStores(ctx context.Context) error {
	sc := n.cfg.Store
	sc.Logger, sc.Registerer, sc.NodeID, sc.MemoryBudget = n.log, n.reg, n.id, n.budget
	start := time.Now()
	st, err := store.Open(ctx, sc)
	if err != nil {
		return err
	}
	n.st = st
	n.log.Info("stores open", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (n *Node) startSyslogListener(context.Context) error {
	scfg := n.cfg.Syslog
	// The listeners' metrics tell them apart by a listener label: this one
	// is "syslog", the Consul Connect one "connect".
	scfg.Logger, scfg.Registerer = n.log, prometheus.WrapRegistererWith(prometheus.Labels{"listener": "syslog"}, n.reg)
	// Syslog over TCP is held back while the records it took wait for a
	// second copy, as an HTTP ingest is answered only then; over UDP there
	// is no one to hold back, so it only commits.
	var sink syslog.Sink = n.st.Logs
	if scfg.TCP() {
		sink = n.copied()
	}
	sl, err := syslog.Listen(scfg, sink)
	if err != nil {
		return fmt.Errorf("--syslog-bind %q: %w", scfg.Bind, err)
	}
	n.sl = sl
	if n.mesh != nil {
		mcfg := n.meshSyslogConfig()
		if n.meshSl, err = syslog.Listen(mcfg, n.copied()); err != nil {
			sl.Close(context.Background())
			return fmt.Errorf("--consul-connect-syslog-bind %q: %w", mcfg.Bind, err)
		}
	}
	return nil
}

// copied is the acknowledgement policy over this node's log store and
// replication; the replicator is made with the cluster, so the policy asks
// for it at the time of each append.
func (n *Node) copied() *CopiedAppender {
	if n.single == nil {
		n.single = prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowg_ingest_single_copy_acks_total",
			Help: "Ingest requests (and syslog TCP batches) answered while no other node held their records: none alive, or --ingest-copy-timeout ran out.",
		})
		n.reg.MustRegister(n.single)
	}
	return NewCopiedAppender(n.st.Logs, lateCopier{n}, n.cfg.CopyTimeout, n.single)
}

// lateCopier is the node's replicator once it exists.
type lateCopier struct{ n *Node }

func (l lateCopier) WaitCopied(ctx context.Context, head uint64, timeout time.Duration) bool {
	if l.n.rep == nil {
		return false
	}
	return l.n.rep.WaitCopied(ctx, head, timeout)
}

// startCluster makes the cluster membership, replication and the APIs, and
// serves the management port (gossip needs it before it starts).
func (n *Node) startCluster(context.Context) error {
	c := n.cfg
	scheme := n.scheme()
	gossipAddr, err := resolveAdvertise(advertiseAddr(c.Advertise, n.mgmtLn.Addr()))
	if err != nil {
		return fmt.Errorf("--cluster-advertise: %w", err)
	}
	n.endpoint = scheme + "://" + advertiseAddr(c.Advertise, n.mgmtLn.Addr())
	ccfg := c.Cluster
	ccfg.NodeID, ccfg.Advertise, ccfg.Scheme, ccfg.TLS = n.id, gossipAddr, scheme, c.MgmtClientTLS
	ccfg.StateDir, ccfg.Logger, ccfg.Registerer = c.StateDir, n.log, n.reg
	ccfg.Tags = map[string]string{
		flowg.TagEndpoint: n.endpoint,
		flowg.TagHTTP:     advertiseAddr("", n.httpLn.Addr()),
		flowg.TagSyslog:   advertiseHostPort(n.sl.Addr().String()),

		replica.OriginTag:   n.st.Logs.Origin(),
		replica.VersionsTag: replica.DefaultVersions,
	}
	if n.cluster, err = serfnet.New(ccfg); err != nil {
		return err
	}
	exportGossipMetrics(n.reg, n.log)
	rcfg := c.Replica
	rcfg.Meta, rcfg.Logs, rcfg.Cluster = n.st, n.st.Logs, n.cluster
	rcfg.Absent = absence(c.StateDir)
	// A pull answer is held whole in memory, once per peer: at most a
	// 64th of the budget each (4 MiB from a 256 MiB budget up).
	rcfg.BatchBytes = int(min(int64(rcfg.BatchBytes), n.budget/64))
	rcfg.Logger, rcfg.Registerer = n.log, n.reg
	if n.rep, err = replica.New(rcfg); err != nil {
		return err
	}
	apiLimits := c.Limits.API
	apiLimits.MaxIngestInFlight = ingestInFlight(c.Limits.IngestInFlight, n.budget)
	n.api, err = httpapi.New(httpapi.Config{
		Logs: ingestLogs{n.st.Logs, n.copied()},
		Auth: n.st.Auth, Cluster: n.rep, Replication: n.rep,
		Peers: problems{n.cluster, n.st}, Logger: n.log, Registerer: n.reg, Gatherer: n.reg,
		Limits: apiLimits, Self: n.id, Discovery: c.Discovery.Describe(),
	})
	if err != nil {
		return err
	}
	routes := map[string]http.Handler{"POST " + serfnet.GossipPath: n.meshPeersOnly(n.cluster.Handler())}
	for pattern, h := range n.rep.Handlers() {
		routes[pattern] = n.meshPeersOnly(n.cluster.Authenticate(h, replica.MaxRequest))
	}
	if c.Pprof {
		routes["GET /debug/pprof/"] = http.HandlerFunc(pprof.Index)
		routes["GET /debug/pprof/profile"] = http.HandlerFunc(pprof.Profile)
		routes["GET /debug/pprof/trace"] = http.HandlerFunc(pprof.Trace)
		routes["GET /debug/pprof/symbol"] = http.HandlerFunc(pprof.Symbol)
	}
	n.mgmt = httpapi.NewServer(n.api.Management(routes), c.MgmtTLS, n.log)
	serfnet.ConfigureServer(n.mgmt)
	n.serve(n.mgmt, n.mgmtLn, "--mgmt-bind")
	return nil
}

func (n *Node) startPublic(context.Context) error {
	n.public = httpapi.NewServer(n.api.Public(), n.cfg.HTTPTLS, n.log)
	n.serve(n.public, n.httpLn, "--http-bind")
	if n.mesh != nil {
		// The listener does the mesh's TLS; the server only sees its result.
		n.meshAPI = httpapi.NewServer(n.meshAPIHandler(), nil, n.log)
		n.serve(n.meshAPI, n.meshLn, "--consul-connect-api-bind")
	}
	return nil
}

// serve runs srv on ln; a failure other than its shutdown ends the node.
func (n *Node) serve(srv *http.Server, ln net.Listener, flagName string) {
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.errc <- fmt.Errorf("%s: %w", flagName, err)
		}
	}()
}

func (n *Node) startDiscovery(context.Context) error {
	c := n.cfg.Discovery
	var sources []discovery.Source
	if c.Join.Endpoint != "" {
		static, err := discovery.NewStatic(c.Join)
		if err != nil {
			return err
		}
		sources = append(sources, static)
	}
	interval := 30 * time.Second
	if c.DNS.Name != "" {
		c.DNS.Scheme = n.scheme()
		dns, err := discovery.NewDNS(c.DNS)
		if err != nil {
			return err
		}
		sources = append(sources, dns)
		interval = dns.Interval()
	}
	if c.Consul.Source() {
		cc := c.Consul
		cc.NodeID, cc.Endpoint, cc.Logger = n.id, n.endpoint, n.log
		cc.HTTP, cc.Syslog = advertiseAddr("", n.httpLn.Addr()), advertiseHostPort(n.sl.Addr().String())
		cc.Also = n.meshRegistrations()
		// The mesh's leaf names a SPIFFE identity, not the address the
		// agent checks; the agent checks /health without a certificate.
		cc.CheckTLSSkipVerify = n.mesh != nil
		consul, err := discovery.NewConsul(cc)
		if err != nil {
			return err
		}
		n.log.Info("discovering peers in Consul", "consul", cc.AgentAddress(), "service", cc.Service)
		sources = append(sources, consul)
		n.consul = consul
		n.goStop("consul", consul.Run)
	}
	n.goStop("join", (&discovery.Loop{Sources: sources, Cluster: n.cluster, Interval: interval, Logger: n.log, Registerer: n.reg}).Run)
	return nil
}

// scheme is the management port's: https when it serves TLS.
func (n *Node) scheme() string {
	if n.cfg.MgmtTLS != nil {
		return "https"
	}
	return "http"
}

func (n *Node) stopDiscovery(ctx context.Context) error {
	n.waitStop("join")
	n.waitStop("consul")
	if n.consul != nil {
		return n.consul.Deregister(ctx)
	}
	return nil
}

// ingestLogs is the log store as the HTTP API sees it: appends go through
// the acknowledgement policy.
type ingestLogs struct {
	*store.LogStore
	copied *CopiedAppender
}

func (l ingestLogs) Append(ctx context.Context, stream string, recs []flowg.Record) error {
	return l.copied.Append(ctx, stream, recs)
}

// problems is what /ready says is wrong: databases refusing writes for
// want of disk space (the node still serves reads, so it stays ready) and
// peers refusing this node (all of them: not ready).
type problems struct {
	cluster *serfnet.Cluster
	st      *store.Store
}

func (p problems) Problems() ([]string, bool) {
	peers, isolated := p.cluster.Problems()
	return append(p.st.Problems(), peers...), isolated
}
