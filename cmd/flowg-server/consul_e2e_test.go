package main

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/flowg-server/flowg-server/internal/consultest"
)

// passing lists the IDs of the passing instances of the flowg service.
func passing(t testing.TB, client *api.Client) []string {
	t.Helper()
	entries, _, err := client.Health().Service("flowg", "", true, nil)
	if err != nil {
		return nil // the agent may be restarting
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Service.ID)
	}
	slices.Sort(ids)
	return ids
}

func waitPassing(t testing.TB, client *api.Client, want []string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := passing(t, client)
		if slices.Equal(got, want) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("passing instances %v, want %v within %s", got, want, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2E_ConsulDiscovery runs three nodes given only a Consul agent (two by
// --cluster-consul-url, one by CONSUL_HTTP_ADDR): they register, Consul lists
// three passing instances, and they form one cluster. A fourth node given
// only --cluster-dns-name flowg.service.consul at Consul's DNS port joins
// them. SIGTERM takes a node out of the catalog within a second; a Consul
// restart, which forgets every service, is survived: the nodes register
// again and the cluster stays as it is.
func TestE2E_ConsulDiscovery(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	agent := consultest.Start(t)
	client := agent.Client(t)
	dir := t.TempDir()
	var nodes []*proc
	for i := range 3 {
		httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
		args := append(nodeArgs(dir, i, httpAddr, mgmtAddr), "--cluster-consul-check-interval", "1s", "--cluster-consul-tag", "e2e")
		var env []string
		if i == 2 {
			env = []string{"CONSUL_HTTP_ADDR=" + agent.HTTPAddr}
		} else {
			args = append(args, "--cluster-consul-url", agent.URL())
		}
		nodes = append(nodes, start(t, dir, env, httpAddr, mgmtAddr, args...))
	}
	waitPassing(t, client, []string{"n0", "n1", "n2"}, 10*time.Second)
	want := map[string]string{"n0": "alive", "n1": "alive", "n2": "alive"}
	waitMembers(t, nodes, want, 10*time.Second)
	svc, _, err := client.Agent().Service("n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Meta["endpoint"] != "http://"+nodes[1].mgmt || svc.Meta["http"] != nodes[1].http ||
		svc.Address != "127.0.0.1" || fmt.Sprint(svc.Port) != nodes[1].mgmt[len("127.0.0.1:"):] || !slices.Contains(svc.Tags, "e2e") {
		t.Errorf("registration of n1: %+v", svc)
	}

	// Consul DNS: flowg.service.consul SRV, targets in the additional section.
	httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	n3 := start(t, dir, nil, httpAddr, mgmtAddr, append(nodeArgs(dir, 3, httpAddr, mgmtAddr),
		"--cluster-dns-name", "flowg.service.consul", "--cluster-dns-server", agent.DNSAddr)...)
	want["n3"] = "alive"
	nodes = append(nodes, n3)
	waitMembers(t, nodes, want, 10*time.Second)

	// SIGTERM deregisters before anything else.
	nodes[0].cmd.Process.Signal(syscall.SIGTERM)
	took := waitPassing(t, client, []string{"n1", "n2"}, 5*time.Second)
	t.Logf("out of the catalog %s after SIGTERM", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("out of the catalog %s after SIGTERM, want within 1s", took)
	}
	if code := nodes[0].wait(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	want["n0"] = "left"
	waitMembers(t, nodes[1:], want, 5*time.Second)

	agent.Restart()
	restarted := time.Now()
	waitPassing(t, client, []string{"n1", "n2"}, 15*time.Second)
	t.Logf("registered again %s after Consul restarted", time.Since(restarted).Round(time.Millisecond))
	waitMembers(t, nodes[1:], want, time.Second)
}
