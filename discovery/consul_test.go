package discovery

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/consultest"
)

func TestPeersFromConsul(t *testing.T) {
	node := &api.Node{Address: "10.0.0.9"}
	svc := func(id, addr string, port int, meta map[string]string) *api.ServiceEntry {
		return &api.ServiceEntry{Node: node, Service: &api.AgentService{ID: id, Address: addr, Port: port, Meta: meta}}
	}
	var many []*api.ServiceEntry
	for i := range MaxConsulPeers + 5 {
		many = append(many, svc(fmt.Sprint("n", i), "10.1.0.1", 9000+i, nil))
	}
	cases := []struct {
		name    string
		entries []*api.ServiceEntry
		want    []flowg.Peer
		count   int
	}{
		{name: "meta wins", entries: []*api.ServiceEntry{
			svc("svc-a", "10.0.0.1", 9113, map[string]string{MetaNodeID: "a", MetaEndpoint: "https://a.example:9443"}),
		}, want: []flowg.Peer{{NodeID: "a", Endpoint: "https://a.example:9443"}}},
		{name: "no meta: service ID, address and port", entries: []*api.ServiceEntry{
			svc("b", "10.0.0.2", 9113, nil),
		}, want: []flowg.Peer{{NodeID: "b", Endpoint: "http://10.0.0.2:9113"}}},
		{name: "no service address: the node's", entries: []*api.ServiceEntry{
			svc("c", "", 9113, map[string]string{MetaNodeID: "c"}),
		}, want: []flowg.Peer{{NodeID: "c", Endpoint: "http://10.0.0.9:9113"}}},
		{name: "bad endpoint meta falls back", entries: []*api.ServiceEntry{
			svc("d", "10.0.0.4", 9113, map[string]string{MetaEndpoint: "ftp://x:1"}),
			svc("e", "10.0.0.5", 9113, map[string]string{MetaEndpoint: "http://no-port"}),
		}, want: []flowg.Peer{{NodeID: "d", Endpoint: "http://10.0.0.4:9113"}, {NodeID: "e", Endpoint: "http://10.0.0.5:9113"}}},
		{name: "IPv6 address", entries: []*api.ServiceEntry{
			svc("f", "fd00::1", 9113, nil),
		}, want: []flowg.Peer{{NodeID: "f", Endpoint: "http://[fd00::1]:9113"}}},
		{name: "unreachable, nil, self and duplicates left out", entries: []*api.ServiceEntry{
			svc("p0", "10.0.0.6", 0, nil),
			svc("p70000", "10.0.0.6", 70000, nil),
			{Service: &api.AgentService{ID: "noaddr", Port: 9113}},
			nil, {Node: node},
			svc("me", "10.0.0.7", 9113, nil),
			svc("other-id", "10.0.0.7", 9113, map[string]string{MetaNodeID: "me"}),
			svc("g", "10.0.0.8", 9113, nil), svc("g", "10.0.0.8", 9113, nil),
		}, want: []flowg.Peer{{NodeID: "g", Endpoint: "http://10.0.0.8:9113"}}},
		{name: "bounded", entries: many, count: MaxConsulPeers},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := PeersFromConsul(c.entries, "me", "http")
			if c.want != nil && !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if c.count > 0 && len(got) != c.count {
				t.Errorf("got %d peers, want %d", len(got), c.count)
			}
		})
	}
}

// consulNode is one node's Consul source with a management /health served
// by a real listener.
func consulNode(t *testing.T, agent *consultest.Agent, id string) (*Consul, *httptest.Server) {
	t.Helper()
	mgmt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.Write([]byte("ok\n"))
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(mgmt.Close)
	cfg := api.DefaultConfig()
	cfg.Address = agent.URL()
	client, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewConsul(ConsulConfig{
		Client: client, NodeID: id, Endpoint: mgmt.URL, HTTP: "127.0.0.1:5080", Syslog: "127.0.0.1:5514",
		Tags: []string{"test"}, CheckInterval: time.Second, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, mgmt
}

func waitPeers(t *testing.T, c *Consul, want []string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		peers, err := c.Peers(context.Background())
		var got []string
		for _, p := range peers {
			got = append(got, p.NodeID)
		}
		slices.Sort(got)
		if err == nil && slices.Equal(got, want) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("peers %v (err %v), want %v within %s", got, err, want, within)
		}
		select {
		case <-c.Changed():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestConsul_RegisterWatchRestart registers two nodes in a real Consul
// agent: each sees the other (not itself) with the meta it registered, a
// third is seen at once through the blocking query, a restarted agent (which
// forgets every local service) gets all three back, and Deregister removes
// one.
func TestConsul_RegisterWatchRestart(t *testing.T) {
	agent := consultest.Start(t)
	a, _ := consulNode(t, agent, "a")
	b, bMgmt := consulNode(t, agent, "b")
	waitPeers(t, a, []string{"b"}, 10*time.Second)
	waitPeers(t, b, []string{"a"}, 10*time.Second)
	peers, _ := a.Peers(context.Background())
	if peers[0].Endpoint != bMgmt.URL {
		t.Errorf("b's endpoint %q, want %q", peers[0].Endpoint, bMgmt.URL)
	}
	svc, _, err := a.cfg.Client.Agent().Service("b", nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Service != "flowg" || svc.Meta[MetaNodeID] != "b" || svc.Meta[MetaHTTP] != "127.0.0.1:5080" ||
		svc.Meta[MetaSyslog] != "127.0.0.1:5514" || !slices.Contains(svc.Tags, "test") {
		t.Errorf("registration of b: %+v", svc)
	}
	checks, _, err := a.cfg.Client.Health().Checks("flowg", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Status != api.HealthPassing || !strings.Contains(c.Name, "/health") {
			t.Errorf("check %s of %s: %s", c.Name, c.ServiceID, c.Status)
		}
	}

	consulNode(t, agent, "c")
	took := waitPeers(t, a, []string{"b", "c"}, 5*time.Second)
	t.Logf("a new instance seen after %s", took)

	agent.Restart()
	restarted := time.Now()
	waitPeers(t, a, []string{"b", "c"}, 15*time.Second)
	waitPeers(t, b, []string{"a", "c"}, 15*time.Second)
	t.Logf("all registered again %s after the agent restarted", time.Since(restarted).Round(time.Millisecond))

	if err := b.Deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, a, []string{"c"}, 5*time.Second)
}

// TestConsul_Unreachable keeps answering with an error, and the loop keeps
// the last good answer, while nothing listens at the address.
func TestConsul_Unreachable(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.Address = "http://127.0.0.1:1"
	client, _ := api.NewClient(cfg)
	c, err := NewConsul(ConsulConfig{Client: client, NodeID: "a", Endpoint: "http://127.0.0.1:9113",
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c.Run(ctx)
	if _, err := c.Peers(ctx); err == nil || !strings.Contains(err.Error(), "register") {
		t.Errorf("Peers error %v, want the registration's", err)
	}
	if _, err := NewConsul(ConsulConfig{Client: client, NodeID: "a", Endpoint: "127.0.0.1:9113"}); err == nil {
		t.Error("an endpoint without scheme is accepted")
	}
}
