package node

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/httpapi"
	"github.com/flowg-server/flowg-server/internal/flagvalue"
	"github.com/flowg-server/flowg-server/mesh"
	"github.com/flowg-server/flowg-server/syslog"
)

// ConnectConfig makes the node a Consul Connect native service: its API
// and a syslog TLS listener on their own ports, registered as Connect
// native services, serving with leaf certificates from the local agent and
// admitting the callers Consul's intentions allow.
type ConnectConfig struct {
	Enabled                   bool
	APIService, SyslogService string
	APIBind, SyslogBind       string
}

func defaultConnect() ConnectConfig {
	return ConnectConfig{APIService: "flowg-api", SyslogService: "flowg-syslog", APIBind: ":5443", SyslogBind: ":6514"}
}

// RegisterFlags registers --consul-connect and --consul-connect-*.
func (c *ConnectConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Enabled, "consul-connect", c.Enabled, "make the node a Consul Connect native service: the API and syslog over mutual TLS with the mesh's certificates on their own ports, callers admitted by Consul's intentions (needs the Consul agent of --cluster-consul-url or CONSUL_HTTP_ADDR)")
	fs.StringVar(&c.APIService, "consul-connect-api-service", c.APIService, "Consul service name of the API's Connect port")
	fs.StringVar(&c.APIBind, "consul-connect-api-bind", c.APIBind, "address of the API's Connect port")
	fs.StringVar(&c.SyslogService, "consul-connect-syslog-service", c.SyslogService, "Consul service name of the syslog Connect port")
	fs.StringVar(&c.SyslogBind, "consul-connect-syslog-bind", c.SyslogBind, "address of the syslog Connect port (syslog over TLS, RFC 5425 framing or lines)")
}

func (c ConnectConfig) validate(consul, mgmtTLS bool) error {
	if !c.Enabled {
		return nil
	}
	if !consul {
		return errors.New("--consul-connect needs the Consul agent's address: --cluster-consul-url or CONSUL_HTTP_ADDR")
	}
	if mgmtTLS {
		return errors.New("--consul-connect serves the management port with the mesh's certificates: drop --mgmt-tls")
	}
	for _, s := range []struct{ flag, v string }{{"--consul-connect-api-service", c.APIService}, {"--consul-connect-syslog-service", c.SyslogService}} {
		if err := flowg.ValidateNodeID(s.v); err != nil {
			return fmt.Errorf("%s %w", s.flag, err)
		}
	}
	for _, b := range []struct{ flag, addr string }{{"--consul-connect-api-bind", c.APIBind}, {"--consul-connect-syslog-bind", c.SyslogBind}} {
		if err := flagvalue.CheckHostPort(b.addr); err != nil {
			return fmt.Errorf("%s %q: %w", b.flag, b.addr, err)
		}
	}
	return nil
}

// startMesh fetches the mesh's roots and the node's leaves; a node told to
// join the mesh does not start without them.
func (n *Node) startMesh(ctx context.Context) error {
	c := n.cfg.Connect
	if !c.Enabled {
		return nil
	}
	client, err := n.cfg.Discovery.Consul.NewClient()
	if err != nil {
		return err
	}
	cluster := n.cfg.Discovery.Consul.Service
	m, err := mesh.New(mesh.Config{Client: client, Services: []string{c.APIService, c.SyslogService, cluster},
		Logger: n.log, Registerer: n.reg})
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := m.Start(sctx); err != nil {
		return fmt.Errorf("--consul-connect: %w (Consul at %s)", err, n.cfg.Discovery.Consul.AgentAddress())
	}
	n.mesh = m
	n.goStop("mesh", m.Run)
	// Between nodes: the management port presents this node's leaf of the
	// cluster's service and takes only that service's (see meshPeersOnly).
	isCluster := func(id flowg.MeshIdentity) error {
		if id.Service != cluster {
			return fmt.Errorf("%s is not %s, the cluster's service", id.Service, cluster)
		}
		return nil
	}
	n.cfg.MgmtTLS, n.cfg.MgmtClientTLS = m.PeerServerTLS(cluster, isCluster), m.ClientTLS(cluster, isCluster)
	n.mgmtLn = tls.NewListener(n.mgmtLn, n.cfg.MgmtTLS)
	ln, err := n.listen("connect-api", "--consul-connect-api-bind", c.APIBind, n.cfg.Limits.HTTP, nil)
	if err != nil {
		n.waitStop("mesh")
		return err
	}
	n.meshLn = tls.NewListener(ln, m.ServerTLS(c.APIService, nil))
	n.log.Info("serving the Consul Connect mesh", "api", ln.Addr().String(), "api_service", c.APIService, "syslog_service", c.SyslogService)
	return nil
}

func (n *Node) stopMesh(context.Context) error {
	if n.mesh == nil {
		return nil
	}
	n.waitStop("mesh")
	return ignoreClosed(n.meshLn.Close())
}

// meshPeersOnly admits to h (gossip, replication) only the nodes of the
// cluster: callers that presented the cluster service's mesh certificate,
// which the handshake has checked. Without Connect it is h.
func (n *Node) meshPeersOnly(h http.Handler) http.Handler {
	if n.mesh == nil {
		return h
	}
	cluster := n.cfg.Discovery.Consul.Service
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The handshake admitted a certificate only when it is the
		// cluster's service's (PeerServerTLS), so its presence is enough:
		// nothing is parsed per gossip packet.
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			w.Header().Set("Connection", "close")
			http.Error(w, "forbidden: the cluster's routes take the "+cluster+" service's mesh certificate", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// meshSyslogConfig is the syslog listener of the Connect port: TCP with the
// mesh's TLS, every record stamped with its sender's mesh identity.
func (n *Node) meshSyslogConfig() syslog.Config {
	scfg := n.cfg.Syslog
	scfg.Bind, scfg.Protocol, scfg.AllowOrigins = n.cfg.Connect.SyslogBind, "tcp", nil
	scfg.TLS = n.mesh.ServerTLS(n.cfg.Connect.SyslogService, nil)
	scfg.Identify = func(cs *tls.ConnectionState) map[string]string {
		id, ok := mesh.Identity(cs)
		if !ok {
			return nil
		}
		return id.Fields()
	}
	scfg.Logger = n.log.With("listener", "connect")
	scfg.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"listener": "connect"}, n.reg)
	return scfg
}

// meshAPIHandler is the public API as the Connect port serves it: the
// caller's mesh identity authenticates it and is stamped on its records.
func (n *Node) meshAPIHandler() http.Handler {
	return httpapi.WithMeshIdentity(n.api.Public(), func(r *http.Request) (flowg.MeshIdentity, bool) {
		return mesh.Identity(r.TLS)
	})
}

// meshRegistrations are the Connect native services of this node, with a
// TCP check each: the agent cannot present a client certificate, but it
// can see that the port accepts.
func (n *Node) meshRegistrations() []*api.AgentServiceRegistration {
	if n.mesh == nil {
		return nil
	}
	c, cc := n.cfg.Connect, n.cfg.Discovery.Consul
	reg := func(service string, addr net.Addr) *api.AgentServiceRegistration {
		host, p, _ := net.SplitHostPort(addr.String())
		if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
			// Bound to every address: the one peers reach the node at.
			ep, _ := flowg.ParseEndpoint(n.endpoint)
			host = ep.Host
		}
		port, _ := strconv.Atoi(p)
		return &api.AgentServiceRegistration{
			ID: n.id + ":" + service, Name: service, Address: host, Port: port,
			Meta:    map[string]string{"node-id": n.id},
			Connect: &api.AgentServiceConnect{Native: true},
			Check: &api.AgentServiceCheck{
				CheckID: "flowg:" + n.id + ":" + service, Name: "flowg-server Connect port " + service,
				TCP: net.JoinHostPort(host, p), Interval: cc.CheckInterval.String(), Timeout: "2s",
				Status: api.HealthPassing, DeregisterCriticalServiceAfter: cc.DeregisterAfter.String(),
			},
		}
	}
	return []*api.AgentServiceRegistration{reg(c.APIService, n.meshLn.Addr()), reg(c.SyslogService, n.meshSl.Addr())}
}
