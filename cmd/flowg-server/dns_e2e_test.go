package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/internal/testwait"
)

// startDnsmasq serves SRV records for _mgmt._tcp.flowg.test, one per
// management address, from a real dnsmasq at addr on loopback; extra lines
// are added to its configuration; stop ends it.
func startDnsmasq(t testing.TB, addr string, mgmtAddrs []string, extra ...string) (stop func()) {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Fatal("dnsmasq is required (apt-get install dnsmasq-base)")
	}
	dir := t.TempDir()
	_, port, _ := strings.Cut(addr, ":")
	conf := []string{"port=" + port, "listen-address=127.0.0.1", "bind-interfaces", "no-resolv", "no-hosts", "user=root"}
	for i, a := range mgmtAddrs {
		_, p, _ := strings.Cut(a, ":")
		conf = append(conf, fmt.Sprintf("srv-host=_mgmt._tcp.flowg.test,node%d.flowg.test,%s", i, p),
			fmt.Sprintf("host-record=node%d.flowg.test,127.0.0.1", i))
	}
	conf = append(conf, extra...)
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
	var once sync.Once
	stop = func() { once.Do(func() { cmd.Process.Kill(); cmd.Wait() }) }
	t.Cleanup(stop)
	testwait.Eventually(t, 5*time.Second, "dnsmasq started", func() bool { return strings.Contains(logged(), "started") })
	return stop
}

// TestE2E_DNSDiscovery starts three nodes with only --cluster-dns-name and a
// real DNS server whose SRV records name all three, each node's own
// included: they form one cluster. A fourth node, which discovers nothing
// itself, is joined once its record is added (within the 1 s interval
// plus a DNS restart), and the cluster keeps running when the DNS server
// stops answering.
func TestE2E_DNSDiscovery(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	dir := t.TempDir()
	var httpAddrs, mgmtAddrs []string
	for range 4 {
		httpAddrs, mgmtAddrs = append(httpAddrs, freeAddr(t)), append(mgmtAddrs, freeAddr(t))
	}
	server := freeAddr(t)
	stopDNS := startDnsmasq(t, server, mgmtAddrs[:3])
	var nodes []*proc
	for i := range 3 {
		nodes = append(nodes, start(t, dir, nil, httpAddrs[i], mgmtAddrs[i], append(nodeArgs(dir, i, httpAddrs[i], mgmtAddrs[i]),
			"--cluster-dns-name", "_mgmt._tcp.flowg.test", "--cluster-dns-server", server, "--cluster-dns-interval", "1s")...))
	}
	want := map[string]string{"n0": "alive", "n1": "alive", "n2": "alive"}
	waitMembers(t, nodes, want, 20*time.Second)

	// A node with no discovery of its own; its record appears later.
	n3 := start(t, dir, nil, httpAddrs[3], mgmtAddrs[3], nodeArgs(dir, 3, httpAddrs[3], mgmtAddrs[3])...)
	stopDNS()
	added := time.Now()
	stopDNS = startDnsmasq(t, server, mgmtAddrs)
	want["n3"] = "alive"
	waitMembers(t, append(nodes, n3), want, 10*time.Second)
	t.Logf("a record added later was joined %s after the DNS server served it", time.Since(added).Round(10*time.Millisecond))

	stopDNS()
	time.Sleep(3 * time.Second) // three lookups fail
	waitMembers(t, append(nodes, n3), want, time.Second)
	resp, err := http.Get("http://" + nodes[0].mgmt + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `flowg_discovery_source_up{source="dns"} 0`) {
		t.Error(`/metrics lacks flowg_discovery_source_up{source="dns"} 0 while the DNS server is down`)
	}
	for _, n := range nodes {
		// Once for the stop (and maybe once more if a lookup fell in the
		// restart above), not once per lookup.
		if c := strings.Count(n.logText(), "discovery source failing"); c < 1 || c > 2 {
			t.Errorf("a failing DNS server is logged %d times, want once per change", c)
		}
	}
}

func nodeArgs(dir string, i int, httpAddr, mgmtAddr string) []string {
	return []string{"--cluster-node-id", fmt.Sprintf("n%d", i), "--http-bind", httpAddr, "--mgmt-bind", mgmtAddr,
		"--syslog-bind", "127.0.0.1:0", "--cluster-cookie", "a-cookie-of-sixteen-bytes-or-more",
		"--auth-dir", fmt.Sprintf("%s/n%d/auth", dir, i), "--log-dir", fmt.Sprintf("%s/n%d/logs", dir, i),
		"--config-dir", fmt.Sprintf("%s/n%d/config", dir, i)}
}
