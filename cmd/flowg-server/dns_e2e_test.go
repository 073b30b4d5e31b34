package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startDnsmasq serves SRV records for _mgmt._tcp.flowg.test, one per
// management address, from a real dnsmasq on a loopback port.
func startDnsmasq(t *testing.T, mgmtAddrs []string) string {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Fatal("dnsmasq is required (apt-get install dnsmasq-base)")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	conf := []string{"port=" + port, "listen-address=127.0.0.1", "bind-interfaces", "no-resolv", "no-hosts", "user=root"}
	for i, a := range mgmtAddrs {
		_, p, _ := strings.Cut(a, ":")
		conf = append(conf, fmt.Sprintf("srv-host=_mgmt._tcp.flowg.test,node%d.flowg.test,%s", i, p),
			fmt.Sprintf("host-record=node%d.flowg.test,127.0.0.1", i))
	}
	confFile := filepath.Join(dir, "dnsmasq.conf")
	os.WriteFile(confFile, []byte(strings.Join(conf, "\n")+"\n"), 0o644)
	cmd := exec.Command(bin, "--keep-in-foreground", "--conf-file="+confFile, "--pid-file="+filepath.Join(dir, "pid"), "--log-facility=-")
	var mu sync.Mutex
	out := &strings.Builder{}
	cmd.Stdout = syncWriter{&mu, out}
	cmd.Stderr = cmd.Stdout
	logged := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logged(), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("dnsmasq did not start: %s", logged())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr
}

// TestE2E_DNSDiscovery starts three nodes with only --cluster-dns-name and a
// real DNS server whose SRV records name all three, each node's own
// included: they form one cluster.
func TestE2E_DNSDiscovery(t *testing.T) {
	dir := t.TempDir()
	var httpAddrs, mgmtAddrs []string
	for range 3 {
		httpAddrs, mgmtAddrs = append(httpAddrs, freeAddr(t)), append(mgmtAddrs, freeAddr(t))
	}
	server := startDnsmasq(t, mgmtAddrs)
	var nodes []*proc
	for i := range 3 {
		nodes = append(nodes, start(t, dir, nil, httpAddrs[i], mgmtAddrs[i],
			"--cluster-node-id", fmt.Sprintf("n%d", i), "--http-bind", httpAddrs[i], "--mgmt-bind", mgmtAddrs[i],
			"--syslog-bind", "127.0.0.1:0", "--cluster-cookie", "a-cookie-of-sixteen-bytes-or-more",
			"--auth-dir", fmt.Sprintf("%s/n%d/auth", dir, i), "--log-dir", fmt.Sprintf("%s/n%d/logs", dir, i),
			"--config-dir", fmt.Sprintf("%s/n%d/config", dir, i),
			"--cluster-dns-name", "_mgmt._tcp.flowg.test", "--cluster-dns-server", server, "--cluster-dns-interval", "1s"))
	}
	waitMembers(t, nodes, map[string]string{"n0": "alive", "n1": "alive", "n2": "alive"}, 20*time.Second)
}
