package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/httpapi"
	"github.com/flowg-server/flowg-server/node"
	"github.com/flowg-server/flowg-server/replica"
	"github.com/flowg-server/flowg-server/serfnet"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/syslog"
)

// Run parses the flags and environment, then runs one node until ctx ends
// (see node.Node.Run for the start and shutdown order).
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
	cfg, err := nodeConfig(c, slog.New(handler))
	if err != nil {
		return err
	}
	return node.New(cfg).Run(ctx)
}

// nodeConfig turns the checked flags into a node's configuration, loading
// the TLS files and making the Consul client.
func nodeConfig(c *config, log *slog.Logger) (node.Config, error) {
	httpTLS, err := serverTLS("http", c.httpTLS)
	if err != nil {
		return node.Config{}, err
	}
	mgmtTLS, err := serverTLS("mgmt", c.mgmtTLS)
	if err != nil {
		return node.Config{}, err
	}
	syslogTLS, err := serverTLS("syslog", c.syslogTLS)
	if err != nil {
		return node.Config{}, err
	}
	clientTLS, err := mgmtClientTLS(c, mgmtTLS)
	if err != nil {
		return node.Config{}, err
	}
	cfg := node.Config{
		NodeID: c.nodeID, StateDir: c.stateDir, Version: versionString(),
		HTTPBind: c.httpBind, MgmtBind: c.mgmtBind, HTTPTLS: httpTLS, MgmtTLS: mgmtTLS, MgmtClientTLS: clientTLS,
		Advertise: c.advertise, CopyTimeout: c.copyTimeout,
		DNSName: c.dnsName, DNSServer: c.dnsServer, DNSInterval: c.dnsInterval,
		RetentionEvery: c.retentionEvery, GCEvery: c.gcEvery, ShutdownTimeout: c.shutdownTimeout,
		Limits: node.Limits{
			HTTP:                 httpapi.ConnLimits{Max: c.limits.httpConns, PerClient: c.limits.httpConnsPerClient},
			Mgmt:                 httpapi.ConnLimits{Max: c.limits.mgmtConns, PerClient: c.limits.mgmtConnsPerClient},
			MemoryBudget:         int64(c.limits.memory),
			IngestInFlight:       int64(c.limits.ingestInFlight),
			LoginFailuresPerUser: c.limits.loginPerUser, LoginFailuresPerAddr: c.limits.loginPerAddr,
		},
		Logger: log,
	}
	cfg.Store = store.DefaultConfig()
	cfg.Store.AuthDir, cfg.Store.LogDir, cfg.Store.ConfigDir = c.authDir, c.logDir, c.configDir
	cfg.Store.SyncWrites = c.syncWrites
	cfg.Store.InitialUser, cfg.Store.InitialPassword = c.initialUser, c.initialPassword
	cfg.Syslog = syslog.DefaultConfig()
	cfg.Syslog.Bind, cfg.Syslog.Protocol, cfg.Syslog.TLS, cfg.Syslog.Stream = c.syslogBind, c.syslogProtocol, syslogTLS, c.syslogStream
	cfg.Syslog.AllowOrigins = c.syslogAllow
	cfg.Syslog.MaxConnections, cfg.Syslog.MaxConnectionsPerClient = c.limits.syslogConns, c.limits.syslogConnsPerClient
	cfg.Cluster = serfnet.DefaultConfig()
	cfg.Cluster.Cookie, cfg.Cluster.PreviousCookie, cfg.Cluster.ClusterName = c.cookie, c.cookiePrev, c.clusterName
	cfg.Replica = replica.DefaultConfig()
	cfg.Replica.TombstoneWindow = c.tombstoneWindow
	if c.joinEndpoint != "" {
		cfg.Join = &flowg.Peer{NodeID: c.joinNodeID, Endpoint: c.joinEndpoint}
	}
	if cfg.Consul, err = consulConfig(c); err != nil {
		return node.Config{}, err
	}
	return cfg, nil
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

// consulConfig is the Consul source's configuration when
// --cluster-consul-url or CONSUL_HTTP_ADDR names an agent, else nil. The
// client reads the other CONSUL_* variables as every Consul tool does;
// flags win.
func consulConfig(c *config) (*node.ConsulConfig, error) {
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
	return &node.ConsulConfig{
		Client: client, Address: cc.Address, Service: c.consul.service, Tags: c.consul.tags,
		CheckInterval: c.consul.checkInterval, DeregisterAfter: c.consul.deregisterAfter,
	}, nil
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
