package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/peterbourgon/ff/v3"

	flowg "github.com/flowg-server/flowg-server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// errUsage is a command line that does not parse; the flag package has
// already printed why.
var errUsage = errors.New("usage")

// tlsFlags are the TLS settings of one listener.
type tlsFlags struct {
	on             bool
	cert, key, cas string
}

// config is everything the command line and FLOWG_* variables say.
type config struct {
	nodeID, joinNodeID, joinEndpoint string
	cookie, cookiePrev, clusterName  string
	stateDir, advertise, mgmtCA      string
	dnsName, dnsServer               string
	dnsInterval                      time.Duration
	consul                           consulFlags
	tombstoneWindow, copyTimeout     time.Duration
	authDir, logDir, configDir       string
	initialUser, initialPassword     string
	syncWrites                       bool
	retentionEvery, gcEvery          time.Duration
	httpBind, mgmtBind, syslogBind   string
	httpTLS, mgmtTLS, syslogTLS      tlsFlags
	syslogProtocol, syslogStream     string
	syslogAllow                      prefixList
	logLevel, logFormat              string
	shutdownTimeout                  time.Duration
	limits                           limitFlags
	showVersion, healthProbe         bool
}

// limitFlags bound what clients may hold of the node.
type limitFlags struct {
	httpConns, httpConnsPerClient     int
	mgmtConns, mgmtConnsPerClient     int
	syslogConns, syslogConnsPerClient int
	memory                            byteSize // 0: derived (see memoryBudget)
	ingestInFlight                    byteSize // 0: an eighth of the memory budget
	loginPerUser, loginPerAddr        int      // failed logins a minute
}

// byteSize is a flag of bytes, written as 512MiB, 2GB, 1073741824.
type byteSize int64

func (b *byteSize) String() string {
	if *b == 0 {
		return "0"
	}
	return humanize.IBytes(uint64(*b))
}

func (b *byteSize) Set(v string) error {
	n, err := humanize.ParseBytes(v)
	if err != nil || n > math.MaxInt64 {
		return fmt.Errorf("%q is not a size such as 512MiB or 2GB", v)
	}
	*b = byteSize(n)
	return nil
}

// consulFlags are the Consul source's settings.
type consulFlags struct {
	url, service, token, datacenter, ca string
	tags                                stringList
	checkInterval, deregisterAfter      time.Duration
}

// stringList is a repeatable flag whose values may also be comma-separated.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// MinCookieLen is the shortest cluster cookie accepted, in bytes.
const MinCookieLen = 16

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("flowg-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.nodeID, "cluster-node-id", "", "this node's ID (default: generated once and kept in the cluster state dir)")
	fs.StringVar(&c.joinNodeID, "cluster-join-node-id", "", "ID of the node to join through")
	fs.StringVar(&c.joinEndpoint, "cluster-join-endpoint", "", "management URL of the node to join through, e.g. http://10.0.0.1:9113")
	fs.StringVar(&c.cookie, "cluster-cookie", "", "shared secret (at least 16 bytes) that keys encryption and authentication between nodes")
	fs.StringVar(&c.cookiePrev, "cluster-cookie-previous", "", "the cookie being replaced, still accepted during a rotation")
	fs.StringVar(&c.clusterName, "cluster-name", "flowg", "cluster name: salts the keys derived from the cookie and labels gossip")
	fs.StringVar(&c.dnsName, "cluster-dns-name", "", "SRV name whose targets are peers' management endpoints, e.g. flowg.service.consul")
	fs.StringVar(&c.dnsServer, "cluster-dns-server", "", "DNS server for --cluster-dns-name, host:port (default: the first nameserver of /etc/resolv.conf)")
	fs.DurationVar(&c.dnsInterval, "cluster-dns-interval", 30*time.Second, "how often the SRV name is looked up again")
	fs.StringVar(&c.consul.url, "cluster-consul-url", "", "Consul agent HTTP address, e.g. http://127.0.0.1:8500: register there and join the passing instances (default: $CONSUL_HTTP_ADDR when set)")
	fs.StringVar(&c.consul.service, "cluster-consul-service", "flowg", "Consul service name the nodes register as and look up")
	fs.StringVar(&c.consul.token, "cluster-consul-token", "", "Consul ACL token (default: $CONSUL_HTTP_TOKEN)")
	fs.StringVar(&c.consul.datacenter, "cluster-consul-datacenter", "", "Consul datacenter (default: the agent's)")
	fs.StringVar(&c.consul.ca, "cluster-consul-ca", "", "PEM CA bundle for an https Consul address (default: $CONSUL_CACERT, else the system's)")
	fs.Var(&c.consul.tags, "cluster-consul-tag", "tag of this node's Consul registration (repeatable, or comma-separated)")
	fs.DurationVar(&c.consul.checkInterval, "cluster-consul-check-interval", 5*time.Second, "how often Consul checks the management /health")
	fs.DurationVar(&c.consul.deregisterAfter, "cluster-consul-deregister-after", time.Minute, "how long the check may fail before Consul removes the node (at least 1m)")
	fs.DurationVar(&c.copyTimeout, "ingest-copy-timeout", 2*time.Second, "how long an HTTP ingest request waits, once committed, for another alive node to hold its records before it is answered (0: answer once committed here)")
	fs.DurationVar(&c.tombstoneWindow, "cluster-tombstone-window", 7*24*time.Hour, "how long deletes of users, roles, tokens and settings are remembered; a node down longer takes the cluster's instead of sharing its own")
	fs.StringVar(&c.stateDir, "cluster-state-dir", "", "node identity and cluster state (default: <parent of the data dirs>/state)")
	fs.StringVar(&c.advertise, "cluster-advertise", "", "address other nodes reach this node's management port at (default: from --mgmt-bind)")
	fs.StringVar(&c.authDir, "auth-dir", "./data/auth", "auth database directory")
	fs.StringVar(&c.logDir, "log-dir", "./data/logs", "log database directory")
	fs.StringVar(&c.configDir, "config-dir", "./data/config", "config database directory")
	fs.StringVar(&c.initialUser, "auth-initial-user", "root", "initial user, created with the admin role when no user exists")
	fs.StringVar(&c.initialPassword, "auth-initial-password", "root", "password of the initial user")
	fs.BoolVar(&c.syncWrites, "log-sync-writes", false, "fsync every commit, so acknowledged records survive power loss")
	fs.DurationVar(&c.retentionEvery, "log-retention-interval", time.Minute, "how often retention runs")
	fs.DurationVar(&c.gcEvery, "log-gc-interval", 10*time.Minute, "how often value-log garbage collection runs")
	fs.StringVar(&c.httpBind, "http-bind", ":5080", "address of the public HTTP API")
	fs.BoolVar(&c.httpTLS.on, "http-tls", false, "serve the public API over TLS")
	fs.StringVar(&c.httpTLS.cert, "http-tls-cert", "", "PEM certificate of the public API")
	fs.StringVar(&c.httpTLS.key, "http-tls-key", "", "PEM key of the public API")
	fs.StringVar(&c.mgmtBind, "mgmt-bind", ":9113", "address of the management API (health, metrics, cluster)")
	fs.BoolVar(&c.mgmtTLS.on, "mgmt-tls", false, "serve the management API over TLS")
	fs.StringVar(&c.mgmtTLS.cert, "mgmt-tls-cert", "", "PEM certificate of the management API")
	fs.StringVar(&c.mgmtTLS.key, "mgmt-tls-key", "", "PEM key of the management API")
	fs.StringVar(&c.mgmtTLS.cas, "mgmt-tls-client-ca", "", "PEM CA bundle; when set, management clients must present a certificate it signed")
	fs.StringVar(&c.mgmtCA, "mgmt-tls-ca", "", "PEM CA bundle that other nodes' management certificates are checked against (default: the system's)")
	fs.StringVar(&c.syslogBind, "syslog-bind", ":5514", "address of the syslog listener")
	fs.StringVar(&c.syslogProtocol, "syslog-protocol", "udp", "udp or tcp")
	fs.BoolVar(&c.syslogTLS.on, "syslog-tls", false, "serve syslog over TLS (needs --syslog-protocol tcp)")
	fs.StringVar(&c.syslogTLS.cert, "syslog-tls-cert", "", "PEM certificate of the syslog listener")
	fs.StringVar(&c.syslogTLS.key, "syslog-tls-key", "", "PEM key of the syslog listener")
	fs.StringVar(&c.syslogTLS.cas, "syslog-tls-client-ca", "", "PEM CA bundle; when set, syslog clients must present a certificate it signed")
	fs.StringVar(&c.syslogStream, "syslog-stream", "syslog", "stream that syslog messages go to")
	fs.Var(&c.syslogAllow, "syslog-allow-origin", "IP or CIDR allowed to send syslog (repeatable, or comma-separated); default: any")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long shutdown waits for in-flight requests")
	fs.IntVar(&c.limits.httpConns, "http-max-connections", 4096, "open connections the public API holds at most; more are closed at once")
	fs.IntVar(&c.limits.httpConnsPerClient, "http-max-connections-per-client", 256, "open connections the public API holds at most from one IP address")
	fs.IntVar(&c.limits.mgmtConns, "mgmt-max-connections", 1024, "open connections the management API holds at most")
	fs.IntVar(&c.limits.mgmtConnsPerClient, "mgmt-max-connections-per-client", 256, "open connections the management API holds at most from one IP address")
	fs.IntVar(&c.limits.syslogConns, "syslog-max-connections", 1024, "open syslog TCP connections at most")
	fs.IntVar(&c.limits.syslogConnsPerClient, "syslog-max-connections-per-client", 32, "open syslog TCP connections at most from one IP address")
	fs.Var(&c.limits.memory, "memory-limit", "memory budget of the node, e.g. 1GiB: the Go memory limit, Badger's caches and memtables and the ingest in flight are sized from it (default: 80% of the cgroup's memory limit when there is one, else 512MiB)")
	fs.Var(&c.limits.ingestInFlight, "ingest-max-inflight", "bytes of ingest request bodies being read and stored at once; beyond it ingest answers 429 with Retry-After (default: an eighth of --memory-limit)")
	fs.IntVar(&c.limits.loginPerUser, "auth-login-failures-per-user", 10, "failed logins a minute allowed for one user name before logins for it answer 429")
	fs.IntVar(&c.limits.loginPerAddr, "auth-login-failures-per-address", 30, "failed logins a minute allowed from one IP address before its logins answer 429")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	fs.BoolVar(&c.healthProbe, "health-probe", false, "ask the management /health of the node running with these flags (on --mgmt-bind) and exit 0 when it answers 200, else 1: a container health check for images without curl")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: flowg-server [flags]\n\nEvery flag is also read from FLOWG_<NAME> (e.g. --cluster-cookie from FLOWG_CLUSTER_COOKIE); flags win.\n\n")
		fs.PrintDefaults()
	}
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix("FLOWG")); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		if strings.HasPrefix(err.Error(), "error parsing environment") {
			fmt.Fprintln(stderr, err)
		}
		return nil, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		return nil, errUsage
	}
	return c, nil
}

// validate checks every value and fills the derived ones. Each error names
// its flag.
func (c *config) validate() error {
	for _, b := range []struct{ flag, addr string }{
		{"--http-bind", c.httpBind}, {"--mgmt-bind", c.mgmtBind}, {"--syslog-bind", c.syslogBind},
	} {
		if err := checkBind(b.addr); err != nil {
			return fmt.Errorf("%s %q: %w", b.flag, b.addr, err)
		}
	}
	if c.nodeID != "" && flowg.ValidateNodeID(c.nodeID) != nil {
		return fmt.Errorf("--cluster-node-id %q: use 1 to 64 letters, digits, '_', '.' and '-', starting with a letter or digit", c.nodeID)
	}
	if c.joinNodeID != "" && flowg.ValidateNodeID(c.joinNodeID) != nil {
		return fmt.Errorf("--cluster-join-node-id %q: use 1 to 64 letters, digits, '_', '.' and '-', starting with a letter or digit", c.joinNodeID)
	}
	if c.joinNodeID != "" && c.joinEndpoint == "" {
		return errors.New("--cluster-join-node-id needs --cluster-join-endpoint")
	}
	if c.joinEndpoint != "" {
		if err := checkEndpoint(c.joinEndpoint); err != nil {
			return fmt.Errorf("--cluster-join-endpoint %q: %w", c.joinEndpoint, err)
		}
	}
	if c.cookie != "" && len(c.cookie) < MinCookieLen {
		return fmt.Errorf("--cluster-cookie is %d bytes; it must be at least %d (try: openssl rand -hex 32)", len(c.cookie), MinCookieLen)
	}
	if c.cookiePrev != "" && c.cookie == "" {
		return errors.New("--cluster-cookie-previous needs --cluster-cookie")
	}
	if c.cookiePrev != "" && len(c.cookiePrev) < MinCookieLen {
		return fmt.Errorf("--cluster-cookie-previous is %d bytes; it must be at least %d", len(c.cookiePrev), MinCookieLen)
	}
	if flowg.ValidateNodeID(c.clusterName) != nil {
		return fmt.Errorf("--cluster-name %q: use 1 to 64 letters, digits, '_', '.' and '-'", c.clusterName)
	}
	if c.advertise != "" {
		if _, _, err := net.SplitHostPort(c.advertise); err != nil && net.ParseIP(c.advertise) == nil {
			return fmt.Errorf("--cluster-advertise %q: not an IP or host:port", c.advertise)
		}
	}
	if c.syslogProtocol != "udp" && c.syslogProtocol != "tcp" {
		return fmt.Errorf("--syslog-protocol %q: use udp or tcp", c.syslogProtocol)
	}
	if c.syslogTLS.on && c.syslogProtocol != "tcp" {
		return errors.New("--syslog-tls needs --syslog-protocol tcp")
	}
	if err := flowg.ValidateStreamName(c.syslogStream); err != nil {
		return fmt.Errorf("--syslog-stream: %w", err)
	}
	if c.dnsServer != "" {
		if err := checkBind(c.dnsServer); err != nil || strings.HasPrefix(c.dnsServer, ":") {
			return fmt.Errorf("--cluster-dns-server %q: not host:port", c.dnsServer)
		}
	}
	if c.dnsInterval < time.Second {
		return fmt.Errorf("--cluster-dns-interval %s: must be at least 1s", c.dnsInterval)
	}
	if c.consul.url != "" {
		if u, err := url.Parse(c.consul.url); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix") || u.Host == "" && u.Scheme != "unix" {
			return fmt.Errorf("--cluster-consul-url %q: want http://host:port, https://host:port or unix:///path", c.consul.url)
		}
	}
	if flowg.ValidateNodeID(c.consul.service) != nil {
		return fmt.Errorf("--cluster-consul-service %q: use 1 to 64 letters, digits, '_', '.' and '-'", c.consul.service)
	}
	if c.consul.checkInterval < time.Second {
		return fmt.Errorf("--cluster-consul-check-interval %s: must be at least 1s", c.consul.checkInterval)
	}
	if c.consul.deregisterAfter < time.Minute {
		return fmt.Errorf("--cluster-consul-deregister-after %s: Consul's minimum is 1m", c.consul.deregisterAfter)
	}
	if c.copyTimeout < 0 {
		return fmt.Errorf("--ingest-copy-timeout %s: must not be negative", c.copyTimeout)
	}
	if c.tombstoneWindow < time.Hour {
		return fmt.Errorf("--cluster-tombstone-window %s: must be at least 1h", c.tombstoneWindow)
	}
	if c.initialUser == "" || c.initialPassword == "" {
		return errors.New("--auth-initial-user and --auth-initial-password must not be empty")
	}
	if c.retentionEvery < time.Second {
		return fmt.Errorf("--log-retention-interval %s: must be at least 1s", c.retentionEvery)
	}
	for _, l := range []struct {
		flag string
		v    int
	}{
		{"--http-max-connections", c.limits.httpConns}, {"--http-max-connections-per-client", c.limits.httpConnsPerClient},
		{"--mgmt-max-connections", c.limits.mgmtConns}, {"--mgmt-max-connections-per-client", c.limits.mgmtConnsPerClient},
		{"--syslog-max-connections", c.limits.syslogConns}, {"--syslog-max-connections-per-client", c.limits.syslogConnsPerClient},
		{"--auth-login-failures-per-user", c.limits.loginPerUser}, {"--auth-login-failures-per-address", c.limits.loginPerAddr},
	} {
		if l.v < 1 {
			return fmt.Errorf("%s %d: must be at least 1", l.flag, l.v)
		}
	}
	if c.limits.memory != 0 && c.limits.memory < 128<<20 {
		return fmt.Errorf("--memory-limit %s: must be at least 128MiB", &c.limits.memory)
	}
	if c.limits.ingestInFlight != 0 && c.limits.ingestInFlight < 1<<20 {
		return fmt.Errorf("--ingest-max-inflight %s: must be at least 1MiB", &c.limits.ingestInFlight)
	}
	if c.gcEvery < time.Second {
		return fmt.Errorf("--log-gc-interval %s: must be at least 1s", c.gcEvery)
	}
	if c.shutdownTimeout <= 0 {
		return fmt.Errorf("--shutdown-timeout %s: must be positive", c.shutdownTimeout)
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		return fmt.Errorf("--log-level %q: %w", c.logLevel, err)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("--log-format %q: use text or json", c.logFormat)
	}
	for _, d := range []struct{ flag, dir string }{
		{"--auth-dir", c.authDir}, {"--log-dir", c.logDir}, {"--config-dir", c.configDir},
	} {
		if err := checkDir(d.dir); err != nil {
			return fmt.Errorf("%s %q: %w", d.flag, d.dir, err)
		}
	}
	if c.stateDir == "" {
		c.stateDir = defaultStateDir(c.authDir, c.logDir, c.configDir)
	}
	if err := checkDir(c.stateDir); err != nil {
		return fmt.Errorf("--cluster-state-dir %q: %w", c.stateDir, err)
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

func checkBind(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not host:port (e.g. :5080 or 127.0.0.1:5080)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("host %q is neither an IP address nor a host name", host)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return false
		}
	}
	return true
}

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("scheme must be http or https (e.g. http://10.0.0.1:9113)")
	}
	if u.Hostname() == "" {
		return errors.New("URL has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return errors.New("give scheme, host and port only")
	}
	return nil
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

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, errors.New("use debug, info, warn or error")
	}
	return l, nil
}

// prefixList is a repeatable flag of IPs and CIDRs, also comma-separated
// (so that one FLOWG_* variable can hold several).
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	var s []string
	for _, p := range *l {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			*l = append(*l, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return fmt.Errorf("%q is neither an IP nor a CIDR", part)
		}
		*l = append(*l, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return nil
}

// serverTLS builds the TLS config of a listener, or nil when TLS is off.
func serverTLS(name string, t tlsFlags) (*tls.Config, error) {
	if !t.on {
		if t.cert != "" || t.key != "" || t.cas != "" {
			return nil, fmt.Errorf("--%s-tls-* flags are set but --%s-tls is not", name, name)
		}
		return nil, nil
	}
	if t.cert == "" || t.key == "" {
		return nil, fmt.Errorf("--%s-tls needs --%s-tls-cert and --%s-tls-key", name, name, name)
	}
	cert, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return nil, fmt.Errorf("--%s-tls-cert/--%s-tls-key: %w", name, name, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.cas != "" {
		pem, err := os.ReadFile(t.cas)
		if err != nil {
			return nil, fmt.Errorf("--%s-tls-client-ca: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--%s-tls-client-ca %q: no PEM certificate in it", name, t.cas)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
