package discovery

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/flagvalue"
)

// Config is every way a node finds peers, in one style: each source has a
// configuration that its flags fill and a constructor that checks it
// (NewStatic, NewDNS, NewConsul). A source whose configuration is empty is
// off.
type Config struct {
	Join   StaticConfig
	DNS    DNSConfig
	Consul ConsulConfig
}

// Describe says in words where the node looks for peers, one line per
// source that is on (what the web UI's cluster page shows).
func (c Config) Describe() []string {
	var out []string
	if c.Join.Endpoint != "" {
		out = append(out, fmt.Sprintf("join %s at %s", cmp.Or(c.Join.NodeID, "a peer"), c.Join.Endpoint))
	}
	if c.DNS.Name != "" {
		out = append(out, fmt.Sprintf("DNS SRV %s every %s (server %s)", c.DNS.Name, c.DNS.Interval, cmp.Or(c.DNS.Server, "of /etc/resolv.conf")))
	}
	if c.Consul.Source() {
		out = append(out, fmt.Sprintf("Consul catalog, service %q, agent %s", c.Consul.Service, c.Consul.AgentAddress()))
	}
	return out
}

// DefaultConfig returns the documented defaults; every source is off.
func DefaultConfig() Config {
	return Config{
		DNS:    DNSConfig{Interval: 30 * time.Second},
		Consul: ConsulConfig{Service: "flowg", CheckInterval: 5 * time.Second, DeregisterAfter: time.Minute, Register: true},
	}
}

// RegisterFlags registers --cluster-join-*, --cluster-dns-* and
// --cluster-consul-*.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Join.NodeID, "cluster-join-node-id", c.Join.NodeID, "ID of the node to join through")
	fs.StringVar(&c.Join.Endpoint, "cluster-join-endpoint", c.Join.Endpoint, "management URL of the node to join through, e.g. http://10.0.0.1:9113")
	fs.StringVar(&c.DNS.Name, "cluster-dns-name", c.DNS.Name, "SRV name whose targets are peers' management endpoints, e.g. flowg.service.consul")
	fs.StringVar(&c.DNS.Server, "cluster-dns-server", c.DNS.Server, "DNS server for --cluster-dns-name, host:port (default: the first nameserver of /etc/resolv.conf)")
	fs.DurationVar(&c.DNS.Interval, "cluster-dns-interval", c.DNS.Interval, "how often the SRV name is looked up again")
	fs.StringVar(&c.Consul.Address, "cluster-consul-url", c.Consul.Address, "Consul agent HTTP address, e.g. http://127.0.0.1:8500: register there and join the passing instances (default: $CONSUL_HTTP_ADDR when set)")
	fs.BoolVar(&c.Consul.Register, "cluster-consul-register", c.Consul.Register, "register this node (and its Connect services) in Consul and find peers there; false when a scheduler registers it (Nomad's service blocks) and the agent serves --consul-connect only")
	fs.StringVar(&c.Consul.Service, "cluster-consul-service", c.Consul.Service, "Consul service name the nodes register as and look up")
	fs.StringVar(&c.Consul.Token, "cluster-consul-token", c.Consul.Token, "Consul ACL token (default: $CONSUL_HTTP_TOKEN)")
	fs.StringVar(&c.Consul.Datacenter, "cluster-consul-datacenter", c.Consul.Datacenter, "Consul datacenter (default: the agent's)")
	fs.StringVar(&c.Consul.CAFile, "cluster-consul-ca", c.Consul.CAFile, "PEM CA bundle for an https Consul address (default: $CONSUL_CACERT, else the system's)")
	fs.Var((*flagvalue.StringList)(&c.Consul.Tags), "cluster-consul-tag", "tag of this node's Consul registration (repeatable, or comma-separated)")
	fs.DurationVar(&c.Consul.CheckInterval, "cluster-consul-check-interval", c.Consul.CheckInterval, "how often Consul checks the management /health")
	fs.DurationVar(&c.Consul.DeregisterAfter, "cluster-consul-deregister-after", c.Consul.DeregisterAfter, "how long the check may fail before Consul removes the node (at least 1m)")
}

// Validate checks every source's settings; each error names its flag.
func (c Config) Validate() error {
	for _, err := range []error{c.Join.validate(), c.DNS.validate(), c.Consul.validate()} {
		if err != nil {
			return err
		}
	}
	return nil
}

// StaticConfig is the peer of --cluster-join-*; empty is off.
type StaticConfig struct {
	NodeID, Endpoint string
}

func (c StaticConfig) validate() error {
	if c.NodeID != "" {
		if err := flowg.ValidateNodeID(c.NodeID); err != nil {
			return fmt.Errorf("--cluster-join-node-id %w", err)
		}
		if c.Endpoint == "" {
			return errors.New("--cluster-join-node-id needs --cluster-join-endpoint")
		}
	}
	if c.Endpoint != "" {
		if _, err := flowg.ParseEndpoint(c.Endpoint); err != nil {
			return fmt.Errorf("--cluster-join-endpoint %q: %w", c.Endpoint, err)
		}
	}
	return nil
}

// DNSConfig is the SRV source of --cluster-dns-*; an empty Name is off.
type DNSConfig struct {
	// Name is the SRV name to look up.
	Name string
	// Server is the DNS server, host:port. Default: the first nameserver
	// of /etc/resolv.conf.
	Server string
	// Interval is how often the loop asks again (sooner when the records'
	// TTL says so). Default 30s.
	Interval time.Duration
	// Scheme of the endpoints: "http" or "https". The node sets it.
	Scheme string
	// Timeout bounds each query. Default 5s.
	Timeout time.Duration
}

func (c DNSConfig) validate() error {
	if c.Server != "" {
		if err := flagvalue.CheckHostPort(c.Server); err != nil || strings.HasPrefix(c.Server, ":") {
			return fmt.Errorf("--cluster-dns-server %q: not host:port", c.Server)
		}
	}
	if c.Interval < time.Second {
		return fmt.Errorf("--cluster-dns-interval %s: must be at least 1s", c.Interval)
	}
	return nil
}

// Enabled reports whether an agent is named: --cluster-consul-url or
// CONSUL_HTTP_ADDR.
func (c ConsulConfig) Enabled() bool {
	return c.Client != nil || c.Address != "" || os.Getenv(api.HTTPAddrEnvName) != ""
}

// Source reports whether the Consul source is on: an agent is named and
// the node registers there.
func (c ConsulConfig) Source() bool { return c.Enabled() && c.Register }

func (c ConsulConfig) validate() error {
	if c.Address != "" {
		if u, err := url.Parse(c.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "unix") || u.Host == "" && u.Scheme != "unix" {
			return fmt.Errorf("--cluster-consul-url %q: want http://host:port, https://host:port or unix:///path", c.Address)
		}
	}
	if err := flowg.ValidateNodeID(c.Service); err != nil {
		return fmt.Errorf("--cluster-consul-service %w", err)
	}
	if c.CheckInterval < time.Second {
		return fmt.Errorf("--cluster-consul-check-interval %s: must be at least 1s", c.CheckInterval)
	}
	if c.DeregisterAfter < time.Minute {
		return fmt.Errorf("--cluster-consul-deregister-after %s: Consul's minimum is 1m", c.DeregisterAfter)
	}
	return nil
}

// NewClient is a client of the configured agent. It reads the CONSUL_*
// variables as every Consul tool does; the fields win.
func (c ConsulConfig) NewClient() (*api.Client, error) {
	if c.Client != nil {
		return c.Client, nil
	}
	cc := api.DefaultConfig()
	if c.Address != "" {
		cc.Address = c.Address
	}
	if c.Token != "" {
		cc.Token = c.Token
	}
	if c.Datacenter != "" {
		cc.Datacenter = c.Datacenter
	}
	if c.CAFile != "" {
		cc.TLSConfig.CAFile = c.CAFile
	}
	client, err := api.NewClient(cc)
	if err != nil {
		return nil, fmt.Errorf("--cluster-consul-url %q: %w", cc.Address, err)
	}
	return client, nil
}

// AgentAddress is the address the client talks to, for the log.
func (c ConsulConfig) AgentAddress() string {
	if c.Address != "" {
		return c.Address
	}
	return api.DefaultConfig().Address
}
