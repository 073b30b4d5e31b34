package mesh

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/jpillora/backoff"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	flowg "github.com/flowg-server/flowg-server"
)

// Config says which services' leaves a node holds and how it asks Consul.
type Config struct {
	// Client talks to the local Consul agent. Required.
	Client *api.Client
	// Services are the Consul service names whose leaf certificates the
	// node presents (the API's, the syslog listener's, the cluster's).
	Services []string
	// AuthorizeTTL is how long an intention decision is reused for new
	// connections of the same caller; a changed intention takes effect
	// within it. Default 2s.
	AuthorizeTTL time.Duration
	// StaleAuthorize is how long a decision may still be used while Consul
	// does not answer. Default 1h.
	StaleAuthorize time.Duration
	// WaitTime bounds each blocking query. Default 5m.
	WaitTime time.Duration
	// MinBackoff and MaxBackoff bound the retries while Consul fails.
	// Defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	// Registerer receives flowg_mesh_* metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Clock is the time decisions expire by. Default time.Now.
	Clock func() time.Time
}

// Mesh holds the node's leaves and the roots, and checks callers.
type Mesh struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	mu          sync.RWMutex
	roots       *x509.CertPool
	inter       *x509.CertPool // intermediates of the roots (cross-signed ones during a rotation)
	trustDomain string
	rootIndex   uint64
	leaves      map[string]*tls.Certificate
	leafIndex   map[string]uint64

	authMu sync.Mutex
	authz  map[authKey]decision
	asking singleflight.Group // one question per caller and target at a time

	lastDenyLog atomic.Int64 // unix ns of the last "connection refused" log line
}

type authKey struct{ target, uri string }

type decision struct {
	ok     bool
	reason string
	at     time.Time
}

// New checks the config; nothing is fetched until Start.
func New(cfg Config) (*Mesh, error) {
	if cfg.Client == nil {
		return nil, errors.New("mesh: a Consul client is required")
	}
	if len(cfg.Services) == 0 {
		return nil, errors.New("mesh: no service to hold a certificate for")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AuthorizeTTL, 2*time.Second)
	def(&cfg.StaleAuthorize, time.Hour)
	def(&cfg.WaitTime, 5*time.Minute)
	def(&cfg.MinBackoff, 500*time.Millisecond)
	def(&cfg.MaxBackoff, 30*time.Second)
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Mesh{cfg: cfg, log: log.With("component", "mesh"), m: newMetrics(cfg.Registerer),
		leaves: map[string]*tls.Certificate{}, leafIndex: map[string]uint64{}, authz: map[authKey]decision{}}, nil
}

// Start fetches the roots and every leaf once, so that the node serves
// with them from its first connection; it fails when the agent does not
// answer or has Connect off.
func (m *Mesh) Start(ctx context.Context) error {
	if err := m.fetchRoots(ctx, 0); err != nil {
		return fmt.Errorf("cannot get the Consul Connect CA roots: %w", err)
	}
	for _, svc := range m.cfg.Services {
		if err := m.fetchLeaf(ctx, svc, 0); err != nil {
			return fmt.Errorf("cannot get the Consul Connect leaf certificate of %q: %w", svc, err)
		}
	}
	return nil
}

// Run keeps the roots and the leaves current with blocking queries until
// ctx ends. While Consul does not answer, the certificates held are kept
// and served.
func (m *Mesh) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() {
		m.watch(ctx, "roots", func(ctx context.Context, idx uint64) error { return m.fetchRoots(ctx, idx) }, m.rootsIndex)
	})
	for _, svc := range m.cfg.Services {
		wg.Go(func() {
			m.watch(ctx, "leaf "+svc, func(ctx context.Context, idx uint64) error { return m.fetchLeaf(ctx, svc, idx) },
				func() uint64 { return m.leafIdx(svc) })
		})
	}
	wg.Wait()
}

func (m *Mesh) watch(ctx context.Context, what string, fetch func(context.Context, uint64) error, index func() uint64) {
	retry := &backoff.Backoff{Min: m.cfg.MinBackoff, Max: m.cfg.MaxBackoff, Factor: 2, Jitter: true}
	failing := false
	for ctx.Err() == nil {
		err := fetch(ctx, index())
		if err == nil {
			if failing {
				m.log.Info("Consul answers again", "watch", what)
			}
			failing = false
			retry.Reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if !failing {
			m.log.Warn("cannot watch Consul Connect certificates; serving with those held", "watch", what, "err", err)
		}
		failing = true
		select {
		case <-ctx.Done():
		case <-time.After(retry.Duration()):
		}
	}
}

func (m *Mesh) rootsIndex() uint64 { m.mu.RLock(); defer m.mu.RUnlock(); return m.rootIndex }
func (m *Mesh) leafIdx(svc string) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.leafIndex[svc]
}

// caRoots is the agent's answer; api.CARoot lacks IntermediateCerts.
type caRoots struct {
	TrustDomain string
	Roots       []struct {
		RootCert          string
		IntermediateCerts []string
		Active            bool
	}
}

func (m *Mesh) fetchRoots(ctx context.Context, index uint64) error {
	var out caRoots
	q := (&api.QueryOptions{WaitIndex: index, WaitTime: m.cfg.WaitTime}).WithContext(ctx)
	meta, err := m.cfg.Client.Raw().Query("/v1/agent/connect/ca/roots", &out, q)
	if err != nil {
		return err
	}
	if meta.LastIndex == index && index != 0 {
		return nil // the wait ran out with nothing new
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	n := 0
	for _, r := range out.Roots {
		if roots.AppendCertsFromPEM([]byte(r.RootCert)) {
			n++
		}
		for _, c := range r.IntermediateCerts {
			inter.AppendCertsFromPEM([]byte(c))
		}
	}
	if n == 0 || out.TrustDomain == "" {
		return errors.New("the agent has no CA root: is Connect enabled (connect { enabled = true })?")
	}
	m.mu.Lock()
	changed := m.rootIndex != 0
	m.roots, m.inter, m.trustDomain, m.rootIndex = roots, inter, strings.ToLower(out.TrustDomain), max(meta.LastIndex, 1)
	m.mu.Unlock()
	if changed {
		m.log.Info("Consul Connect CA roots changed", "roots", n)
		m.m.rotations.WithLabelValues("roots").Inc()
	}
	return nil
}

func (m *Mesh) fetchLeaf(ctx context.Context, svc string, index uint64) error {
	q := (&api.QueryOptions{WaitIndex: index, WaitTime: m.cfg.WaitTime}).WithContext(ctx)
	leaf, meta, err := m.cfg.Client.Agent().ConnectCALeaf(svc, q)
	if err != nil {
		return err
	}
	if meta.LastIndex == index && index != 0 {
		return nil
	}
	cert, err := tls.X509KeyPair([]byte(leaf.CertPEM), []byte(leaf.PrivateKeyPEM))
	if err != nil {
		return fmt.Errorf("leaf of %q: %w", svc, err)
	}
	m.mu.Lock()
	changed := m.leafIndex[svc] != 0
	m.leaves[svc], m.leafIndex[svc] = &cert, max(meta.LastIndex, 1)
	m.mu.Unlock()
	m.m.leafExpiry.WithLabelValues(svc).Set(float64(leaf.ValidBefore.Unix()))
	if changed {
		m.log.Info("Consul Connect leaf certificate renewed", "service", svc, "valid_before", leaf.ValidBefore)
		m.m.rotations.WithLabelValues("leaf").Inc()
	}
	return nil
}

func (m *Mesh) leaf(svc string) (*tls.Certificate, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if c := m.leaves[svc]; c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("mesh: no leaf certificate for %q", svc)
}

// ServerTLS serves as service: it presents the service's current leaf and
// admits a client only when its certificate chains to the current roots,
// names a service of this trust domain, and the intentions allow that
// service to reach this one. allowed, when set, is asked instead of the
// intentions (the management port admits the cluster's own service only).
func (m *Mesh) ServerTLS(service string, allowed func(flowg.MeshIdentity) error) *tls.Config {
	return m.serverTLS(service, allowed, false)
}

// PeerServerTLS is ServerTLS for the management port: a client without a
// certificate (a health check, a scraper) is served with no mesh identity,
// and the routes between nodes refuse it; one that presents a
// certificate must pass allowed.
func (m *Mesh) PeerServerTLS(service string, allowed func(flowg.MeshIdentity) error) *tls.Config {
	return m.serverTLS(service, allowed, true)
}

func (m *Mesh) serverTLS(service string, allowed func(flowg.MeshIdentity) error, optional bool) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return m.leaf(service) },
		// The chain is checked below against the roots of this moment, so
		// that a rotation applies to the next handshake; a client without
		// a certificate is refused there too, and counted.
		ClientAuth: tls.RequestClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if optional && len(raw) == 0 {
				return nil
			}
			c, err := m.verify(raw)
			if err == nil {
				if allowed != nil {
					if err = allowed(c.id); err != nil {
						err = &refusal{reason: "identity", err: err}
					}
				} else {
					err = m.authorize(service, c)
				}
			}
			if err != nil {
				m.denied(service, err)
			}
			return err
		},
	}
}

// ClientTLS presents the service's leaf to a peer and accepts the peer
// only when its certificate chains to the current roots and expect
// accepts its identity (host names play no part: a mesh identity is the
// SPIFFE URI).
func (m *Mesh) ClientTLS(service string, expect func(flowg.MeshIdentity) error) *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return m.leaf(service) },
		InsecureSkipVerify:   true, // verified below, against the mesh's roots and identity
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			c, err := m.verify(raw)
			if err == nil && expect != nil {
				err = expect(c.id)
			}
			return err
		},
	}
}

// refusal is why a connection was refused, with its metric label.
type refusal struct {
	reason string
	err    error
}

func (r *refusal) Error() string { return r.err.Error() }

func refuse(reason string, format string, args ...any) error {
	return &refusal{reason: reason, err: fmt.Errorf(format, args...)}
}

// caller is a verified client: its identity, SPIFFE URI and serial.
type caller struct {
	id          flowg.MeshIdentity
	uri, serial string
}

// verify checks a presented chain and returns who presented it.
func (m *Mesh) verify(raw [][]byte) (caller, error) {
	if len(raw) == 0 {
		return caller{}, refuse("no_certificate", "no client certificate")
	}
	certs := make([]*x509.Certificate, 0, len(raw))
	for _, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return caller{}, refuse("untrusted", "unreadable certificate: %v", err)
		}
		certs = append(certs, c)
	}
	m.mu.RLock()
	roots, inter, domain := m.roots, m.inter.Clone(), m.trustDomain
	m.mu.RUnlock()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return caller{}, refuse("untrusted", "certificate does not chain to the mesh's CA roots: %v", err)
	}
	if len(leaf.URIs) != 1 {
		return caller{}, refuse("not_spiffe", "certificate has %d URI names, want one SPIFFE ID", len(leaf.URIs))
	}
	id, td, err := parseSPIFFE(leaf.URIs[0])
	if err != nil {
		return caller{}, refuse("not_spiffe", "%s: %v", leaf.URIs[0], err)
	}
	if td != domain {
		return caller{}, refuse("trust_domain", "trust domain %s is not the mesh's (%s)", td, domain)
	}
	return caller{id: id, uri: leaf.URIs[0].String(), serial: serialString(leaf)}, nil
}

// serialString is the serial number as Consul writes it: hex bytes
// separated by ':'.
func serialString(c *x509.Certificate) string {
	b := c.SerialNumber.Bytes()
	var sb strings.Builder
	for i, x := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		fmt.Fprintf(&sb, "%02x", x)
	}
	return sb.String()
}

// authorize asks the agent whether id may reach target, reusing a decision
// for AuthorizeTTL, and a stale one while the agent does not answer.
func (m *Mesh) authorize(target string, c caller) error {
	key := authKey{target, c.uri}
	now := m.cfg.Clock()
	m.authMu.Lock()
	d, cached := m.authz[key]
	m.authMu.Unlock()
	if !cached || now.Sub(d.at) > m.cfg.AuthorizeTTL {
		ans, err := m.askAuthorize(target, c.uri, c.serial)
		switch {
		case err == nil:
			d = decision{ok: ans.Authorized, reason: ans.Reason, at: now}
			m.authMu.Lock()
			if len(m.authz) >= 10_000 { // bounded: forget all, ask again
				clear(m.authz)
			}
			m.authz[key] = d
			m.authMu.Unlock()
		case cached && now.Sub(d.at) <= m.cfg.StaleAuthorize:
			m.m.staleDecisions.Inc()
		default:
			return refuse("authorize_error", "cannot ask Consul whether %s may connect: %v", c.id.Service, err)
		}
	}
	if !d.ok {
		return refuse("intention", "intentions deny %s => %s (%s)", c.id.Service, target, d.reason)
	}
	return nil
}

// askAuthorize calls /v1/agent/connect/authorize, bounded to 5 s (the API
// call takes no context). Handshakes of the same caller to the same target
// share one question, so an agent that hangs holds one goroutine per
// caller, not one per connection.
func (m *Mesh) askAuthorize(target, uri, serial string) (*api.AgentAuthorize, error) {
	ch := m.asking.DoChan(target+"\x00"+uri, func() (any, error) {
		return m.cfg.Client.Agent().ConnectAuthorize(&api.AgentAuthorizeParams{Target: target, ClientCertURI: uri, ClientCertSerial: serial})
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*api.AgentAuthorize), nil
	case <-time.After(5 * time.Second):
		return nil, errors.New("no answer within 5s")
	}
}

// denied counts a refused connection and logs it, at most once a second.
func (m *Mesh) denied(service string, err error) {
	reason := "untrusted"
	var r *refusal
	if errors.As(err, &r) {
		reason = r.reason
	}
	m.m.denied.WithLabelValues(service, reason).Inc()
	now := time.Now().UnixNano()
	if last := m.lastDenyLog.Load(); now-last > int64(time.Second) && m.lastDenyLog.CompareAndSwap(last, now) {
		m.log.Warn("refused a mesh connection (more in flowg_mesh_denied_total)", "service", service, "reason", reason, "err", err)
	}
}

// Identity is the verified mesh identity of a TLS connection served by
// ServerTLS.
func Identity(cs *tls.ConnectionState) (flowg.MeshIdentity, bool) {
	if cs == nil || len(cs.PeerCertificates) == 0 || len(cs.PeerCertificates[0].URIs) != 1 {
		return flowg.MeshIdentity{}, false
	}
	id, _, err := parseSPIFFE(cs.PeerCertificates[0].URIs[0])
	return id, err == nil
}
