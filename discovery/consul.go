package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/jpillora/backoff"

	flowg "github.com/flowg-server/flowg-server"
)

// MaxConsulPeers bounds the peers one Consul answer may give.
const MaxConsulPeers = 1000

// Meta keys of a node's Consul registration.
const (
	MetaNodeID   = "node-id"
	MetaEndpoint = "endpoint"
	MetaHTTP     = "http"
	MetaSyslog   = "syslog"
)

// ConsulConfig says how a node registers in Consul and which service it
// watches.
type ConsulConfig struct {
	// Address is the agent's HTTP address (http://, https:// or unix://);
	// Token, Datacenter and CAFile complete it. Empty fields take the
	// CONSUL_* variables, then the client's defaults.
	Address, Token, Datacenter, CAFile string
	// Client, when set, is used instead of one built from the fields.
	Client *api.Client
	// Service is the Consul service name. Default "flowg".
	Service string
	// Tags are added to this node's registration.
	Tags []string
	// NodeID is the service ID; Endpoint the management URL, whose host and
	// port are the service's address and port and whose /health is checked.
	NodeID, Endpoint string
	// HTTP and Syslog are this node's public addresses, kept in the meta.
	HTTP, Syslog string
	// CheckInterval and CheckTimeout time the /health check. Defaults 5s, 2s.
	CheckInterval, CheckTimeout time.Duration
	// DeregisterAfter is how long the check may stay critical before Consul
	// removes the instance. Default 1m (Consul's minimum).
	DeregisterAfter time.Duration
	// Register: the node registers in Consul and finds peers there (the
	// Consul source); false leaves the agent to --consul-connect. Default
	// true.
	Register bool
	// CheckTLSSkipVerify makes the agent's check of an https endpoint skip
	// the certificate check (a mesh certificate names no address).
	CheckTLSSkipVerify bool
	// Also are more services of this node (its Consul Connect native API
	// and syslog), registered and deregistered with it.
	Also []*api.AgentServiceRegistration
	// WaitTime bounds each blocking query. Default 5m.
	WaitTime time.Duration
	// MinBackoff and MaxBackoff bound the retries while Consul fails.
	// Defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Consul registers this node as an instance of its service in the Consul
// catalog and finds the passing instances with blocking queries, so a node
// that turns healthy is seen as soon as Consul knows, not on a poll. Run
// keeps both going; Peers answers from the last query.
type Consul struct {
	cfg     ConsulConfig
	log     *slog.Logger
	changed chan struct{}

	mu    sync.Mutex
	peers []flowg.Peer
	err   error
}

// NewConsul fills in the config's defaults and checks it.
func NewConsul(cfg ConsulConfig) (*Consul, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.CheckInterval, 5*time.Second)
	def(&cfg.CheckTimeout, 2*time.Second)
	def(&cfg.DeregisterAfter, time.Minute)
	def(&cfg.WaitTime, 5*time.Minute)
	def(&cfg.MinBackoff, 500*time.Millisecond)
	def(&cfg.MaxBackoff, 30*time.Second)
	if cfg.Service == "" {
		cfg.Service = "flowg"
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if _, _, err := hostPort(cfg.Endpoint); err != nil {
		return nil, fmt.Errorf("consul: endpoint %q: %w", cfg.Endpoint, err)
	}
	client, err := cfg.NewClient()
	if err != nil {
		return nil, err
	}
	cfg.Client = client
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Consul{
		cfg: cfg, log: log.With("component", "discovery", "source", "consul"),
		changed: make(chan struct{}, 1),
	}, nil
}

// Name returns "consul".
func (*Consul) Name() string { return "consul" }

// Peers returns the passing instances of the last answer, this node left
// out, or the error of the last query when it failed.
func (c *Consul) Peers(context.Context) ([]flowg.Peer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers, c.err
}

// Changed receives when an answer differs from the one before.
func (c *Consul) Changed() <-chan struct{} { return c.changed }

// Registration is what this node registers: the management endpoint as
// address and port, an HTTP check on its /health, and the meta that lets
// peers join it without guessing.
func (c *Consul) Registration() *api.AgentServiceRegistration {
	host, port, _ := hostPort(c.cfg.Endpoint)
	meta := map[string]string{MetaNodeID: c.cfg.NodeID, MetaEndpoint: c.cfg.Endpoint}
	if c.cfg.HTTP != "" {
		meta[MetaHTTP] = c.cfg.HTTP
	}
	if c.cfg.Syslog != "" {
		meta[MetaSyslog] = c.cfg.Syslog
	}
	return &api.AgentServiceRegistration{
		ID: c.cfg.NodeID, Name: c.cfg.Service, Tags: c.cfg.Tags,
		Address: host, Port: port, Meta: meta,
		Check: &api.AgentServiceCheck{
			CheckID:       "flowg:" + c.cfg.NodeID,
			Name:          "flowg-server management /health",
			HTTP:          c.cfg.Endpoint + "/health",
			TLSSkipVerify: c.cfg.CheckTLSSkipVerify,
			Interval:      c.cfg.CheckInterval.String(),
			Timeout:       c.cfg.CheckTimeout.String(),
			// The node registers once its management port serves, so it
			// starts passing rather than waiting a check interval.
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: c.cfg.DeregisterAfter.String(),
		},
	}
}

// Run registers this node and watches the service until ctx ends. Consul
// failing is retried with backoff; the node is registered again after any
// failure, since an agent that restarted has forgotten its local services.
func (c *Consul) Run(ctx context.Context) {
	health, agent := c.cfg.Client.Health(), c.cfg.Client.Agent()
	retry := &backoff.Backoff{Min: c.cfg.MinBackoff, Max: c.cfg.MaxBackoff, Factor: 2, Jitter: true}
	registered := false
	var index uint64
	fail := func(err error) {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.notify()
		wait := retry.Duration()
		registered, index = false, 0
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	for ctx.Err() == nil {
		if !registered {
			var err error
			for _, reg := range append([]*api.AgentServiceRegistration{c.Registration()}, c.cfg.Also...) {
				if err = agent.ServiceRegisterOpts(reg, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)); err != nil {
					break
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("register service %q: %w", c.cfg.Service, err))
				}
				continue
			}
			registered = true
			c.log.Info("registered in Consul", "service", c.cfg.Service, "id", c.cfg.NodeID)
		}
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: c.cfg.WaitTime}).WithContext(ctx)
		entries, meta, err := health.Service(c.cfg.Service, "", true, q)
		if err != nil {
			if ctx.Err() == nil {
				fail(fmt.Errorf("passing instances of %q: %w", c.cfg.Service, err))
			}
			continue
		}
		retry.Reset()
		switch {
		case meta.LastIndex < index:
			// Consul's index went back: its state was rebuilt (a dev agent
			// restarted), so this node's registration may be gone.
			registered = false
		case meta.LastIndex == index:
			// The wait ran out with nothing new: check the registration is
			// still there, in case the agent restarted between two queries.
			if _, _, err := agent.Service(c.cfg.NodeID, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
				var se api.StatusError
				registered = !(errors.As(err, &se) && se.Code == http.StatusNotFound)
			}
		}
		// An index of 0 would never block; Consul asks clients to use 1.
		index = max(meta.LastIndex, 1)
		c.set(PeersFromConsul(entries, c.cfg.NodeID, schemeOf(c.cfg.Endpoint)))
	}
}

// Deregister removes this node from the catalog, as on graceful shutdown.
func (c *Consul) Deregister(ctx context.Context) error {
	var errs []error
	for _, id := range append([]string{c.cfg.NodeID}, c.alsoIDs()...) {
		if err := c.cfg.Client.Agent().ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx)); err != nil {
			errs = append(errs, fmt.Errorf("consul: deregister %q: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Consul) alsoIDs() []string {
	var ids []string
	for _, r := range c.cfg.Also {
		ids = append(ids, r.ID)
	}
	return ids
}

func (c *Consul) set(peers []flowg.Peer) {
	c.mu.Lock()
	same := c.err == nil && slices.Equal(peers, c.peers)
	c.peers, c.err = peers, nil
	c.mu.Unlock()
	if !same {
		c.notify()
	}
}

func (c *Consul) notify() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// PeersFromConsul turns the instances of a health query into peers, leaving
// out this node. The node ID is the meta's, else the service ID; the
// endpoint is the meta's, else scheme://address:port of the service (the
// node's address when the service has none). Instances without a reachable
// endpoint are left out.
func PeersFromConsul(entries []*api.ServiceEntry, self, scheme string) []flowg.Peer {
	var peers []flowg.Peer
	seen := map[flowg.Peer]bool{}
	for _, e := range entries {
		if e == nil || e.Service == nil || len(peers) >= MaxConsulPeers {
			continue
		}
		s := e.Service
		id := s.Meta[MetaNodeID]
		if id == "" {
			id = s.ID
		}
		ep := s.Meta[MetaEndpoint]
		if _, _, err := hostPort(ep); err != nil {
			addr := s.Address
			if addr == "" && e.Node != nil {
				addr = e.Node.Address
			}
			if addr == "" || s.Port <= 0 || s.Port > 65535 {
				continue
			}
			ep = scheme + "://" + net.JoinHostPort(addr, strconv.Itoa(s.Port))
		}
		p := flowg.Peer{NodeID: id, Endpoint: ep}
		if id == self || seen[p] {
			continue
		}
		seen[p] = true
		peers = append(peers, p)
	}
	return peers
}

// hostPort splits an http(s) endpoint URL into its host and port.
func hostPort(endpoint string) (string, int, error) {
	e, err := flowg.ParseEndpoint(endpoint)
	if err != nil {
		return "", 0, err
	}
	if e.Port == 0 {
		return "", 0, errors.New("needs a port")
	}
	return e.Host, e.Port, nil
}

func schemeOf(endpoint string) string {
	if e, err := flowg.ParseEndpoint(endpoint); err == nil {
		return e.Scheme
	}
	return "http"
}
