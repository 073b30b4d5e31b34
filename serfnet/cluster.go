package serfnet

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
	"github.com/jpillora/backoff"
	"github.com/prometheus/client_golang/prometheus"

	flowg "github.com/flowg-server/flowg-server"
)

// Config says who this node is and how it gossips.
type Config struct {
	// NodeID is this node's name in the cluster. Required.
	NodeID string
	// Advertise is the IP:port other nodes reach this node's management
	// port at; never an unspecified address. Required.
	Advertise string
	// Scheme is "https" when the management port serves TLS, else "http".
	Scheme string
	// TLS is the client TLS config for reaching other nodes over https:
	// their CA and, for mutual TLS, this node's certificate.
	TLS *tls.Config
	// Cookie keys encryption and request signing; empty leaves the cluster
	// open. At least MinCookieLen bytes.
	Cookie string
	// PreviousCookie is also accepted, for a rotation window.
	PreviousCookie string
	// ClusterName separates clusters: it salts the derived keys and is
	// memberlist's label. Default "flowg".
	ClusterName string
	// Tags travel with this node: its endpoint URL and HTTP and syslog
	// addresses, under "endpoint", "http" and "syslog".
	Tags map[string]string
	// StateDir holds Serf's snapshot, so a restarted node rejoins the nodes
	// it knew without discovery. Empty keeps no snapshot.
	StateDir string
	// ReconnectInterval is how often failed members are tried again.
	// Default 1s (Serf's own default is 30s).
	ReconnectInterval time.Duration
	// SignatureWindow bounds the clock skew a signed request may have.
	// Default 60s.
	SignatureWindow time.Duration
	// Tune, when set, changes the Serf and memberlist configuration last;
	// tests shrink the timings with it.
	Tune func(*serf.Config)
	// Clock is the time signed requests carry and are checked against.
	// Default time.Now; tests shift it to play a node with a wrong clock.
	Clock func() time.Time
	// Logger receives the cluster's log lines, Serf's and memberlist's
	// included. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the cluster's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// MinCookieLen is the shortest cookie accepted, in bytes.
const MinCookieLen = 16

// DefaultConfig returns a Config with the documented defaults.
func DefaultConfig() Config {
	return Config{Scheme: "http", ClusterName: "flowg", ReconnectInterval: time.Second, SignatureWindow: 60 * time.Second}
}

// RegisterFlags registers the flags a user sets: --cluster-cookie,
// --cluster-cookie-previous and --cluster-name. The node fills in the rest.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Cookie, "cluster-cookie", c.Cookie, fmt.Sprintf("shared secret (at least %d bytes) that keys encryption and authentication between nodes", MinCookieLen))
	fs.StringVar(&c.PreviousCookie, "cluster-cookie-previous", c.PreviousCookie, "the cookie being replaced, still accepted during a rotation")
	fs.StringVar(&c.ClusterName, "cluster-name", c.ClusterName, "cluster name: salts the keys derived from the cookie and labels gossip")
}

// Validate checks what a user sets; each error names its flag. New also
// checks what the node fills in.
func (c Config) Validate() error {
	switch {
	case c.Cookie != "" && len(c.Cookie) < MinCookieLen:
		return fmt.Errorf("--cluster-cookie is %d bytes; it must be at least %d (try: openssl rand -hex 32)", len(c.Cookie), MinCookieLen)
	case c.PreviousCookie != "" && c.Cookie == "":
		return errors.New("--cluster-cookie-previous needs --cluster-cookie")
	case c.PreviousCookie != "" && len(c.PreviousCookie) < MinCookieLen:
		return fmt.Errorf("--cluster-cookie-previous is %d bytes; it must be at least %d", len(c.PreviousCookie), MinCookieLen)
	}
	if err := flowg.ValidateNodeID(c.ClusterName); err != nil {
		return fmt.Errorf("--cluster-name %w", err)
	}
	return nil
}

// validateWiring checks what the node fills in.
func (c Config) validateWiring() error {
	switch {
	case c.NodeID == "":
		return errors.New("serfnet: node ID is required")
	case c.Scheme != "http" && c.Scheme != "https":
		return fmt.Errorf("serfnet: scheme %q is neither http nor https", c.Scheme)
	case c.ReconnectInterval <= 0 || c.SignatureWindow <= 0:
		return errors.New("serfnet: reconnect interval and signature window must be positive")
	}
	addr, err := net.ResolveTCPAddr("tcp", c.Advertise)
	if err != nil || addr.IP == nil || addr.IP.IsUnspecified() || addr.Port == 0 {
		return fmt.Errorf("serfnet: advertise address %q is not a reachable IP:port", c.Advertise)
	}
	return nil
}

// LANConfig is memberlist's LAN configuration with a suspicion multiplier
// of 3 instead of 4 (memberlist's own local-network choice): a dead node
// is declared failed after 3·log10(n) probe intervals of suspicion instead
// of 4 (5.1 s instead of 6.8 s at 50 nodes), so that a crash is seen
// everywhere within 8 s. Lifeguard still stretches the timeout while
// confirmations are missing and while this node is itself slow, which is
// what keeps false alarms rare.
//
// A failed node's name may also be taken at once by a node at another
// address: a rescheduled pod or allocation comes back under its node ID
// with a new IP. memberlist's default refuses the new address as a
// conflict until the dead entry is dropped (30 s later).
func LANConfig() *memberlist.Config {
	ml := memberlist.DefaultLANConfig()
	ml.SuspicionMult = 3
	ml.DeadNodeReclaimTime = time.Nanosecond
	return ml
}

// Cluster is this node's membership.
type Cluster struct {
	cfg       Config
	log       *slog.Logger
	m         *metrics
	transport *Transport
	serf      *serf.Serf
	events    chan serf.Event
	done      chan struct{}
	staleSelf chan struct{} // a peer holds this node at another address

	clientOnce sync.Once
	client     *http.Client // for Request
}

// New prepares the transport; nothing gossips until Start.
func New(cfg Config) (*Cluster, error) {
	if err := errors.Join(cfg.Validate(), cfg.validateWiring()); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "cluster")
	adv, _ := net.ResolveTCPAddr("tcp", cfg.Advertise)
	m := newMetrics(cfg.Registerer)
	var signing []byte
	var v *verifier
	if cfg.Cookie != "" {
		cur := deriveKeys(cfg.Cookie, cfg.ClusterName)
		signing = cur.signing
		accepted := [][]byte{cur.signing}
		if cfg.PreviousCookie != "" {
			accepted = append(accepted, deriveKeys(cfg.PreviousCookie, cfg.ClusterName).signing)
		}
		names := []string{cfg.NodeID, adv.String()}
		if hp, err := parseEndpoint(cfg.Tags[flowg.TagEndpoint]); err == nil {
			names = append(names, hp)
		}
		v = newVerifier(accepted, cfg.SignatureWindow, names...)
	}
	c := &Cluster{
		cfg: cfg, log: log, m: m,
		transport: newTransport(adv, cfg.Scheme, cfg.TLS, signing, v, log, m, cfg.Clock),
		events:    make(chan serf.Event, 256),
		done:      make(chan struct{}),
		staleSelf: make(chan struct{}, 1),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(&membersCollector{c}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Handler serves the transport; mount it at GossipPath on the management mux
// before Start.
func (c *Cluster) Handler() http.Handler { return c.transport }

// Transport exposes the transport, for tests that cut links.
func (c *Cluster) Transport() *Transport { return c.transport }

// Start creates the Serf instance: it begins to gossip and, when a snapshot
// is kept, rejoins the nodes it knew.
func (c *Cluster) Start() error {
	sc := serf.DefaultConfig()
	sc.NodeName = c.cfg.NodeID
	sc.Tags = c.cfg.Tags
	sc.EventCh = c.events
	sc.ReconnectInterval = c.cfg.ReconnectInterval
	sc.RejoinAfterLeave = true // a node restarted after a graceful stop rejoins from its snapshot
	// A node restarted at another address (a rescheduled pod keeps its node
	// ID, not its IP) before its peers saw the old one fail is a "name
	// conflict" to Serf, whose resolution asks the peers, finds them still
	// naming the old address and shuts the new node's Serf down for good.
	// Without it the conflict is logged, the old entry fails as any dead
	// node does, and the next push/pull (or the new node's refutation)
	// brings the new address in (see LANConfig).
	sc.EnableNameConflictResolution = false
	sc.Merge = mergeWatch{c}
	sc.Logger = newStdLogger(c.log.With("from", "serf"))
	var previous []string
	if c.cfg.StateDir != "" {
		sc.SnapshotPath = filepath.Join(c.cfg.StateDir, "serf.snapshot")
		previous = snapshotPeers(sc.SnapshotPath, c.cfg.NodeID)
	}
	ml := LANConfig()
	ml.Name = c.cfg.NodeID
	ml.Transport = c.transport
	adv := c.transport.advertise
	ml.BindAddr, ml.BindPort = adv.IP.String(), adv.Port
	ml.AdvertiseAddr, ml.AdvertisePort = adv.IP.String(), adv.Port
	ml.Label = c.cfg.ClusterName
	ml.Logger = newStdLogger(c.log.With("from", "memberlist"))
	if c.cfg.Cookie != "" {
		primary := deriveKeys(c.cfg.Cookie, c.cfg.ClusterName).gossip
		ring := [][]byte{primary}
		if c.cfg.PreviousCookie != "" {
			ring = append(ring, deriveKeys(c.cfg.PreviousCookie, c.cfg.ClusterName).gossip)
		}
		kr, err := memberlist.NewKeyring(ring, primary)
		if err != nil {
			return fmt.Errorf("cannot build the gossip keyring: %w", err)
		}
		ml.Keyring = kr
		ml.GossipVerifyIncoming, ml.GossipVerifyOutgoing = true, true
	}
	sc.MemberlistConfig = ml
	if c.cfg.Tune != nil {
		c.cfg.Tune(sc)
	}
	s, err := serf.Create(sc)
	if err != nil {
		return fmt.Errorf("cannot start cluster membership: %w", err)
	}
	c.serf = s
	go c.logEvents()
	go c.refreshStaleSelf()
	if len(previous) > 0 {
		go c.rejoinPrevious(previous)
	}
	if c.cfg.Cookie == "" {
		c.log.Warn("no cluster cookie: gossip is neither encrypted nor authenticated")
	}
	return nil
}

func (c *Cluster) logEvents() {
	for {
		select {
		case e := <-c.events:
			if me, ok := e.(serf.MemberEvent); ok {
				for _, m := range me.Members {
					c.log.Info("cluster member "+memberEventWord(me.Type), "member", m.Name, "addr", net.JoinHostPort(m.Addr.String(), fmt.Sprint(m.Port)))
				}
			}
		case <-c.done:
			return
		}
	}
}

func memberEventWord(t serf.EventType) string {
	switch t {
	case serf.EventMemberJoin:
		return "joined"
	case serf.EventMemberLeave:
		return "left"
	case serf.EventMemberFailed:
		return "failed"
	case serf.EventMemberUpdate:
		return "updated"
	case serf.EventMemberReap:
		return "reaped"
	}
	return t.String()
}

// mergeWatch sees, through Serf's merge hook, every member a peer tells
// this node about; it accepts them all.
type mergeWatch struct{ c *Cluster }

// NotifyMerge notes a peer that still holds this node at another address:
// it came back at a new IP before its peers saw the old one fail.
func (w mergeWatch) NotifyMerge(members []*serf.Member) error {
	adv := w.c.transport.advertise
	for _, m := range members {
		if m.Name == w.c.cfg.NodeID && (!m.Addr.Equal(adv.IP) || int(m.Port) != adv.Port) {
			select {
			case w.c.staleSelf <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// refreshStaleSelf exchanges state with the alive members again while
// some still hold this node at its former address: they take the new one
// once they have seen the old one fail (seconds later), but would only
// hear of it at the next periodic push/pull (30 s and more) otherwise. It
// backs off from 2 s to 30 s (jittered) while the stale entry persists.
func (c *Cluster) refreshStaleSelf() {
	retry := &backoff.Backoff{Min: 2 * time.Second, Max: 30 * time.Second, Factor: 2, Jitter: true}
	for {
		select {
		case <-c.done:
			return
		case <-c.staleSelf:
		}
		if retry.Attempt() == 0 {
			c.log.Info("peers still hold this node at a former address; exchanging state with them again until they take the new one")
		}
		select {
		case <-c.done:
			return
		case <-time.After(retry.Duration()):
		}
		// A few peers are enough: one that takes the new address tells the
		// rest.
		var addrs []string
		for _, m := range c.serf.Members() {
			if m.Name != c.cfg.NodeID && m.Status == serf.StatusAlive {
				addrs = append(addrs, m.Name+"/"+net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))))
			}
		}
		rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
		addrs = addrs[:min(len(addrs), 3)]
		select { // what the exchange says, not what came before it
		case <-c.staleSelf:
		default:
		}
		if len(addrs) > 0 {
			c.serf.Join(addrs, true)
		}
		select {
		case <-c.staleSelf: // still there: again, later
			c.staleSelf <- struct{}{}
		default:
			retry.Reset()
		}
	}
}

// NodeID is this node's ID.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// Join joins the cluster through peers and returns how many other nodes
// were reached. Peers that are this node (by ID or by address) are skipped,
// so joining oneself never counts.
func (c *Cluster) Join(ctx context.Context, peers []flowg.Peer) (int, error) {
	var addrs []string
	for _, p := range peers {
		if p.NodeID == c.cfg.NodeID {
			continue
		}
		hp, err := parseEndpoint(p.Endpoint)
		if err != nil {
			return 0, err
		}
		host, port, _ := net.SplitHostPort(hp)
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return 0, fmt.Errorf("cannot resolve %s: %w", host, err)
		}
		// IPv4 first: "localhost" often resolves to ::1 first while nodes bind
		// 127.0.0.1. Every address is tried; one answering is enough.
		sort.SliceStable(ips, func(i, j int) bool { return ips[i].IP.To4() != nil && ips[j].IP.To4() == nil })
		for _, ip := range ips {
			if c.isSelf(ip.IP, port) {
				continue
			}
			a := net.JoinHostPort(ip.IP.String(), port)
			if p.NodeID != "" {
				a = p.NodeID + "/" + a
			}
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return 0, errors.New("no peer other than this node")
	}
	n, err := c.serf.Join(addrs, true)
	if n > 0 {
		// A second state exchange a moment later teaches a node that joined
		// during a join storm the nodes that joined beside it; otherwise it
		// may miss one until the next push/pull (60 s and more at 50 nodes).
		go func() {
			select {
			case <-time.After(time.Second):
				c.serf.Join(addrs, true)
			case <-c.done:
			}
		}()
	}
	return n, err
}

// isSelf reports whether ip:port is this node's management address, taking
// any loopback address as this node's when it advertises a loopback one.
func (c *Cluster) isSelf(ip net.IP, port string) bool {
	adv := c.transport.advertise
	if port != fmt.Sprint(adv.Port) {
		return false
	}
	return ip.Equal(adv.IP) || ip.IsLoopback() && adv.IP.IsLoopback()
}

// IsSelf reports whether the peer is this node: its node ID, its
// management endpoint, or an endpoint whose IP and port are this node's.
func (c *Cluster) IsSelf(p flowg.Peer) bool {
	if p.NodeID != "" {
		return p.NodeID == c.cfg.NodeID
	}
	if p.Endpoint == c.cfg.Tags[flowg.TagEndpoint] {
		return true
	}
	hp, err := parseEndpoint(p.Endpoint)
	if err != nil {
		return false
	}
	host, port, _ := net.SplitHostPort(hp)
	ip := net.ParseIP(host)
	return ip != nil && c.isSelf(ip, port)
}

// IsMember reports whether a node of that ID or management endpoint is an
// alive member other than this node.
func (c *Cluster) IsMember(p flowg.Peer) bool {
	for _, m := range c.serf.Members() {
		if m.Status == serf.StatusAlive && m.Name != c.cfg.NodeID &&
			(p.NodeID != "" && m.Name == p.NodeID || p.Endpoint != "" && m.Tags[flowg.TagEndpoint] == p.Endpoint) {
			return true
		}
	}
	return false
}

// Nodes lists every known node, this one included, sorted by ID.
func (c *Cluster) Nodes() []flowg.Node {
	if c.serf == nil {
		return nil
	}
	suspect := map[string]bool{}
	for _, n := range c.serf.Memberlist().Members() {
		if n.State == memberlist.StateSuspect {
			suspect[n.Name] = true
		}
	}
	var out []flowg.Node
	for _, m := range c.serf.Members() {
		out = append(out, flowg.Node{
			ID: m.Name, Endpoint: m.Tags[flowg.TagEndpoint], Status: statusOf(m, suspect[m.Name]),
			HTTPAddr: m.Tags[flowg.TagHTTP], Syslog: m.Tags[flowg.TagSyslog], Tags: m.Tags,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func statusOf(m serf.Member, suspect bool) flowg.NodeStatus {
	switch m.Status {
	case serf.StatusAlive:
		if suspect {
			return flowg.StatusSuspect
		}
		return flowg.StatusAlive
	case serf.StatusLeaving, serf.StatusLeft:
		return flowg.StatusLeft
	case serf.StatusFailed:
		return flowg.StatusFailed
	}
	return flowg.StatusUnknown
}

// Leave tells the cluster this node is going, so that peers see it "left"
// at once rather than "failed" after a timeout.
func (c *Cluster) Leave() error {
	if c.serf == nil {
		return nil
	}
	return c.serf.Leave()
}

// Close stops gossip. It is safe to call more than once.
func (c *Cluster) Close() error {
	select {
	case <-c.done:
		return nil
	default:
		close(c.done)
	}
	if c.serf == nil {
		return c.transport.Shutdown()
	}
	return c.serf.Shutdown()
}

// Problems lists the peers that refuse this node's requests lately, each
// with the cause in a person's words (a clock offset in seconds, a cookie
// mismatch), and says whether every peer heard from lately refused it:
// then this node is cut off from its cluster by its own configuration.
//
// A node that has peers but reaches none of them (a partition, or every
// other node down) says that too, naming them; it is not cut off by its
// own configuration, so isolated stays false (its writes are answered
// with a single copy, and counted).
func (c *Cluster) Problems() (problems []string, isolated bool) {
	problems, isolated = c.transport.peers.problems()
	var unreachable []string
	alive := 0
	for _, n := range c.Nodes() {
		switch {
		case n.ID == c.cfg.NodeID:
		case n.Status == flowg.StatusAlive:
			alive++
		case n.Status == flowg.StatusFailed || n.Status == flowg.StatusSuspect:
			unreachable = append(unreachable, n.ID+" ("+string(n.Status)+")")
		}
	}
	if alive == 0 && len(unreachable) > 0 {
		problems = append(problems, "no peer reachable: "+strings.Join(unreachable, ", ")+
			"; a partition or every other node down: ingest is answered with a single copy")
	}
	return problems, isolated
}

// membersCollector reports the members by status at each scrape, and
// whether the peers refuse this node.
type membersCollector struct{ c *Cluster }

var (
	membersDesc  = prometheus.NewDesc("flowg_cluster_members", "Cluster members by status.", []string{"status"}, nil)
	isolatedDesc = prometheus.NewDesc("flowg_cluster_isolated",
		"1 while every peer heard from in the last 30 s refuses this node's requests (clock offset, cookie mismatch), else 0.", nil, nil)
	refusingDesc = prometheus.NewDesc("flowg_cluster_refusing_peers",
		"Peers that refused this node's requests in the last 30 s.", nil, nil)
	offsetDesc = prometheus.NewDesc("flowg_cluster_clock_offset_seconds",
		"The largest clock offset a peer refusing this node reported in the last 30 s (its clock minus this node's), else 0.", nil, nil)
)

func (m *membersCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- membersDesc
	ch <- isolatedDesc
	ch <- refusingDesc
	ch <- offsetDesc
}

func (m *membersCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[flowg.NodeStatus]int{flowg.StatusAlive: 0, flowg.StatusSuspect: 0, flowg.StatusFailed: 0, flowg.StatusLeft: 0}
	for _, n := range m.c.Nodes() {
		counts[n.Status]++
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(n), string(s))
	}
	refusing, isolated := m.c.transport.peers.problems()
	iso := 0.0
	if isolated {
		iso = 1
	}
	ch <- prometheus.MustNewConstMetric(isolatedDesc, prometheus.GaugeValue, iso)
	ch <- prometheus.MustNewConstMetric(refusingDesc, prometheus.GaugeValue, float64(len(refusing)))
	ch <- prometheus.MustNewConstMetric(offsetDesc, prometheus.GaugeValue, m.c.transport.peers.clockOffset().Seconds())
}
