package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	consulapi "github.com/hashicorp/consul/api"
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

// Run runs one node until ctx ends, then shuts it down in order: stop
// discovery and deregister from Consul, stop taking HTTP ingest and end live
// tails, close the syslog listener once what it read is stored, wait (up to
// 10 s) until the peers hold this node's records, stop replication, leave
// the cluster, stop the HTTP servers once in-flight requests are done
// (bounded by --shutdown-timeout), close the stores. The log gives each
// step and how long it took.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if c.showVersion {
		fmt.Fprintln(stdout, "flowg-server", versionString())
		return nil
	}
	if c.healthProbe {
		return healthProbe(c)
	}
	if err := c.validate(); err != nil {
		return err
	}
	level, _ := parseLevel(c.logLevel)
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if c.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(handler)

	httpTLS, err := serverTLS("http", c.httpTLS)
	if err != nil {
		return err
	}
	mgmtTLS, err := serverTLS("mgmt", c.mgmtTLS)
	if err != nil {
		return err
	}
	syslogTLS, err := serverTLS("syslog", c.syslogTLS)
	if err != nil {
		return err
	}
	lock, err := lockStateDir(c.stateDir)
	if err != nil {
		return fmt.Errorf("--cluster-state-dir %q: %w", c.stateDir, err)
	}
	defer lock.Close()
	nodeID, err := nodeIdentity(c.stateDir, c.nodeID, log)
	if err != nil {
		return fmt.Errorf("--cluster-state-dir %q: cannot keep the node ID: %w", c.stateDir, err)
	}
	log = log.With("node_id", nodeID)
	log.Info("starting flowg-server", "version", versionString(), "auth_dir", c.authDir, "log_dir", c.logDir,
		"config_dir", c.configDir, "state_dir", c.stateDir)
	if c.cookie == "" {
		log.Warn("no --cluster-cookie: traffic between nodes is neither encrypted nor authenticated")
	}

	// Listen first, so that a port in use fails the start before any
	// database is opened.
	httpLn, err := listen("--http-bind", c.httpBind)
	if err != nil {
		return err
	}
	defer httpLn.Close()
	mgmtLn, err := listen("--mgmt-bind", c.mgmtBind)
	if err != nil {
		return err
	}
	defer mgmtLn.Close()

	scfg := syslog.DefaultConfig()
	scfg.Bind, scfg.Protocol, scfg.TLS, scfg.Stream = c.syslogBind, c.syslogProtocol, syslogTLS, c.syslogStream
	scfg.AllowOrigins, scfg.Logger = c.syslogAllow, log
	scfg.MaxConnections, scfg.MaxConnectionsPerClient = c.limits.syslogConns, c.limits.syslogConnsPerClient

	reg := prometheus.NewRegistry()
	scfg.Registerer = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fitConnLimits(&c.limits, log)
	if httpLn, err = httpapi.LimitListener(httpLn, "public", httpapi.ConnLimits{Max: c.limits.httpConns, PerClient: c.limits.httpConnsPerClient}, log, reg); err != nil {
		return err
	}
	if mgmtLn, err = httpapi.LimitListener(mgmtLn, "mgmt", httpapi.ConnLimits{Max: c.limits.mgmtConns, PerClient: c.limits.mgmtConnsPerClient}, log, reg); err != nil {
		return err
	}
	if httpTLS != nil {
		httpLn = tls.NewListener(httpLn, httpTLS)
	}
	if mgmtTLS != nil {
		mgmtLn = tls.NewListener(mgmtLn, mgmtTLS)
	}
	sc := store.DefaultConfig()
	sc.AuthDir, sc.LogDir, sc.ConfigDir = c.authDir, c.logDir, c.configDir
	sc.SyncWrites = c.syncWrites
	sc.InitialUser, sc.InitialPassword = c.initialUser, c.initialPassword
	sc.Logger, sc.Registerer, sc.NodeID = log, reg, nodeID
	budget := memoryBudget(int64(c.limits.memory), log)
	sc.MemoryBudget = budget
	absent := absence(c.stateDir)
	openStart := time.Now()
	st, err := store.Open(ctx, sc)
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("stores open", "took", time.Since(openStart).Round(time.Millisecond))

	// Syslog opens after the stores, since a message read is a message to store.
	sl, err := syslog.Listen(scfg, st.Logs)
	if err != nil {
		return fmt.Errorf("--syslog-bind %q: %w", c.syslogBind, err)
	}

	scheme := "http"
	if mgmtTLS != nil {
		scheme = "https"
	}
	gossipAddr, err := resolveAdvertise(advertiseAddr(c.advertise, mgmtLn.Addr()))
	if err != nil {
		return fmt.Errorf("--cluster-advertise: %w", err)
	}
	endpoint := scheme + "://" + advertiseAddr(c.advertise, mgmtLn.Addr())
	clientTLS, err := mgmtClientTLS(c, mgmtTLS)
	if err != nil {
		return err
	}
	ccfg := serfnet.DefaultConfig()
	ccfg.NodeID, ccfg.Advertise, ccfg.Scheme, ccfg.TLS = nodeID, gossipAddr, scheme, clientTLS
	ccfg.Cookie, ccfg.PreviousCookie, ccfg.ClusterName = c.cookie, c.cookiePrev, c.clusterName
	ccfg.StateDir, ccfg.Logger, ccfg.Registerer = c.stateDir, log, reg
	ccfg.Tags = map[string]string{
		"endpoint": endpoint,
		"http":     advertiseAddr("", httpLn.Addr()),
		"syslog":   advertiseHostPort(sl.Addr().String()),

		replica.OriginTag:   st.Logs.Origin(),
		replica.VersionsTag: replica.DefaultVersions,
	}
	cluster, err := serfnet.New(ccfg)
	if err != nil {
		return err
	}
	defer cluster.Close()
	rcfg := replica.DefaultConfig()
	rcfg.Meta, rcfg.Logs, rcfg.Cluster = st, st.Logs, cluster
	rcfg.TombstoneWindow, rcfg.Absent = c.tombstoneWindow, absent
	// A pull answer is held whole in memory, once per peer: at most a
	// 64th of the budget each (4 MiB from a 256 MiB budget up).
	rcfg.BatchBytes = int(min(int64(rcfg.BatchBytes), budget/64))
	rcfg.Logger, rcfg.Registerer = log, reg
	rep, err := replica.New(rcfg)
	if err != nil {
		return err
	}
	api, err := httpapi.New(httpapi.Config{
		Logs: newCopiedLogs(st.Logs, rep, c.copyTimeout, reg), Auth: st.Auth, Cluster: rep, Replication: rep,
		Peers: nodeProblems{cluster, st}, Logger: log, Registerer: reg, Gatherer: reg,
		Limits: httpapi.Limits{
			LoginFailuresPerUser: c.limits.loginPerUser, LoginFailuresPerAddr: c.limits.loginPerAddr,
			MaxIngestInFlight: ingestInFlight(int64(c.limits.ingestInFlight), budget),
		},
	})
	if err != nil {
		return err
	}
	public := httpapi.NewServer(api.Public(), httpTLS, log)
	clusterRoutes := map[string]http.Handler{"POST " + serfnet.GossipPath: cluster.Handler()}
	for pattern, h := range rep.Handlers() {
		clusterRoutes[pattern] = cluster.Authenticate(h, replica.MaxRequest)
	}
	mgmt := httpapi.NewServer(api.Management(clusterRoutes), mgmtTLS, log)
	serfnet.ConfigureServer(mgmt)
	errc := make(chan error, 2)
	go func() { errc <- serve(public, httpLn, "--http-bind") }()
	go func() { errc <- serve(mgmt, mgmtLn, "--mgmt-bind") }()
	maintCtx, stopMaint := context.WithCancel(context.Background())
	defer stopMaint()
	maintDone := make(chan struct{})
	go func() {
		defer close(maintDone)
		st.Logs.RunMaintenance(maintCtx, c.retentionEvery, c.gcEvery)
	}()
	var sources []discovery.Source
	if c.joinEndpoint != "" {
		sources = append(sources, discovery.Static{Peer: flowg.Peer{NodeID: c.joinNodeID, Endpoint: c.joinEndpoint}})
	}
	interval := 30 * time.Second
	if c.dnsName != "" {
		server := c.dnsServer
		if server == "" {
			if server, err = discovery.SystemDNSServer(); err != nil {
				return fmt.Errorf("--cluster-dns-server: %w", err)
			}
		}
		sources = append(sources, &discovery.DNS{Record: c.dnsName, Server: server, Scheme: scheme})
		interval = c.dnsInterval
	}
	consul, err := consulSource(c, nodeID, endpoint, ccfg.Tags, log)
	if err != nil {
		return err
	}
	if consul != nil {
		sources = append(sources, consul)
	}

	// Gossip starts once the management server that carries it serves.
	if err := cluster.Start(); err != nil {
		return err
	}
	joinCtx, stopJoin := context.WithCancel(context.Background())
	defer stopJoin()
	consulDone := make(chan struct{})
	go func() {
		defer close(consulDone)
		if consul != nil {
			consul.Run(joinCtx)
		}
	}()
	joinDone := make(chan struct{})
	go func() {
		defer close(joinDone)
		(&discovery.Loop{Sources: sources, Cluster: cluster, Interval: interval, Logger: log, Registerer: reg}).Run(joinCtx)
	}()
	repCtx, stopRep := context.WithCancel(context.Background())
	defer stopRep()
	repDone := make(chan struct{})
	go func() {
		defer close(repDone)
		go keepLastSeen(repCtx, c.stateDir, log)
		rep.Run(repCtx)
	}()
	sl.Serve()
	api.SetReady(true)
	log.Info("serving", "http", httpLn.Addr().String(), "mgmt", mgmtLn.Addr().String(), "endpoint", endpoint, "gossip", gossipAddr)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("a listener failed; shutting down", "err", runErr)
	}

	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	// Each step runs until it ends or --shutdown-timeout passes; a step
	// still running then is left behind (and said) with a short grace, so
	// that shutdown ends in bounded time whatever a client or a peer does.
	// Records are committed before they are acknowledged, so even stores
	// left unclosed lose nothing acknowledged (as after kill -9).
	step := func(name string, fn func() error) {
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- fn() }()
		var err error
		select {
		case err = <-done:
		case <-sctx.Done():
			grace := 200 * time.Millisecond
			if name == "close stores" {
				grace = 5 * time.Second
			}
			select {
			case err = <-done:
			case <-time.After(grace):
				err = fmt.Errorf("shutdown step %q did not end within --shutdown-timeout %s; left behind", name, c.shutdownTimeout)
			}
		}
		if err != nil {
			log.Error("shutdown step failed", "step", name, "err", err)
			runErr = errors.Join(runErr, err)
			return
		}
		log.Info("shutdown step done", "step", name, "took", time.Since(start).Round(time.Millisecond))
	}
	// Out of Consul first, so that nothing discovers a node on its way out.
	step("stop joining", func() error { stopJoin(); <-joinDone; <-consulDone; return nil })
	if consul != nil {
		step("deregister from Consul", func() error { return consul.Deregister(sctx) })
	}
	step("stop ingest", func() error { api.StopIngest(); return nil })
	step("stop syslog and store what it read", func() error { return sl.Close(sctx) })
	step("hand over records to peers", func() error {
		hctx, cancel := context.WithTimeout(sctx, 10*time.Second)
		defer cancel()
		if err := rep.HandOver(hctx); err != nil {
			// They pull the rest when this node is back.
			log.Warn("stopping before every peer holds this node's records", "err", err)
		}
		return nil
	})
	step("stop replication", func() error { stopRep(); <-repDone; return nil })
	step("leave the cluster", cluster.Leave)
	step("stop gossip", cluster.Close)
	step("stop maintenance", func() error { stopMaint(); <-maintDone; return nil })
	step("stop public API", func() error { return public.Shutdown(sctx) })
	step("stop management API", func() error { return mgmt.Shutdown(sctx) })
	step("close stores", st.Close)
	return runErr
}

// nodeProblems is what /ready says is wrong: databases refusing writes
// for want of disk space (the node still serves reads, so it stays ready)
// and peers refusing this node (all of them: not ready).
type nodeProblems struct {
	cluster *serfnet.Cluster
	st      *store.Store
}

func (n nodeProblems) Problems() ([]string, bool) {
	peers, isolated := n.cluster.Problems()
	return append(n.st.Problems(), peers...), isolated
}

// healthProbe asks the management /health of the node that runs with the
// same flags, on this host.
func healthProbe(c *config) error {
	host, port, err := net.SplitHostPort(c.mgmtBind)
	if err != nil {
		return fmt.Errorf("--mgmt-bind %q: %w", c.mgmtBind, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme, transport := "http", &http.Transport{}
	if c.mgmtTLS.on {
		// The probe sends no secret and only reads a status code from this
		// host, so the certificate (issued for the advertised name, not for
		// 127.0.0.1) is not checked.
		scheme, transport.TLSClientConfig = "https", &tls.Config{InsecureSkipVerify: true}
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: transport}
	resp, err := client.Get(scheme + "://" + net.JoinHostPort(host, port) + "/health")
	if err != nil {
		return fmt.Errorf("health probe: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health probe: %s", resp.Status)
	}
	return nil
}

// consulSource is the Consul source when --cluster-consul-url or
// CONSUL_HTTP_ADDR names an agent, else nil. The client reads the other
// CONSUL_* variables as every Consul tool does; flags win.
func consulSource(c *config, nodeID, endpoint string, tags map[string]string, log *slog.Logger) (*discovery.Consul, error) {
	if c.consul.url == "" && os.Getenv(consulapi.HTTPAddrEnvName) == "" {
		return nil, nil
	}
	cc := consulapi.DefaultConfig()
	if c.consul.url != "" {
		cc.Address = c.consul.url
	}
	if c.consul.token != "" {
		cc.Token = c.consul.token
	}
	if c.consul.datacenter != "" {
		cc.Datacenter = c.consul.datacenter
	}
	if c.consul.ca != "" {
		cc.TLSConfig.CAFile = c.consul.ca
	}
	client, err := consulapi.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("--cluster-consul-url %q: %w", cc.Address, err)
	}
	src, err := discovery.NewConsul(discovery.ConsulConfig{
		Client: client, Service: c.consul.service, Tags: c.consul.tags,
		NodeID: nodeID, Endpoint: endpoint, HTTP: tags["http"], Syslog: tags["syslog"],
		CheckInterval: c.consul.checkInterval, DeregisterAfter: c.consul.deregisterAfter,
		Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("--cluster-consul-url: %w", err)
	}
	log.Info("discovering peers in Consul", "consul", cc.Address, "service", c.consul.service)
	return src, nil
}

// listen opens a TCP listener; TLS and connection limits wrap it later.
func listen(flagName, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", flagName, addr, err)
	}
	return ln, nil
}

func serve(srv *http.Server, ln net.Listener, flagName string) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s: %w", flagName, err)
	}
	return nil
}

// advertiseAddr is the address other hosts reach a listener at: override
// when given, else the bound address with an unspecified host (0.0.0.0, ::)
// replaced by this host's first non-loopback address.
func advertiseAddr(override string, bound net.Addr) string {
	_, port, _ := net.SplitHostPort(bound.String())
	if override != "" {
		if _, _, err := net.SplitHostPort(override); err == nil {
			return override
		}
		return net.JoinHostPort(override, port)
	}
	return advertiseHostPort(bound.String())
}

// advertiseHostPort replaces an empty or unspecified host in addr with this
// host's first non-loopback address.
func advertiseHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return addr
	}
	return net.JoinHostPort(firstHostIP(), port)
}

func firstHostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// resolveAdvertise turns host:port into the IP:port gossip advertises.
func resolveAdvertise(hostPort string) (string, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return "", fmt.Errorf("%s is not an address other nodes can reach", host)
		}
		return hostPort, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("cannot resolve %q: %v", host, err)
	}
	return net.JoinHostPort(ips[0].String(), port), nil
}

// mgmtClientTLS is the TLS config for reaching other nodes' management
// ports: their CA (--mgmt-tls-ca, else the system's) and this node's own
// certificate, for mutual TLS.
func mgmtClientTLS(c *config, server *tls.Config) (*tls.Config, error) {
	if server == nil {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: server.Certificates}
	if c.mgmtCA != "" {
		pem, err := os.ReadFile(c.mgmtCA)
		if err != nil {
			return nil, fmt.Errorf("--mgmt-tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--mgmt-tls-ca %q: no PEM certificate in it", c.mgmtCA)
		}
	}
	return cfg, nil
}
