package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// netLab is three network namespaces on a bridge the test creates: each
// node runs in its own namespace at 10.213.<k>.<2+i>, and a link is cut by
// taking its veth down.
type netLab struct {
	t      *testing.T
	bridge string
	ns     []string
	veths  []string
	ips    []string
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// labs counts the labs made by this process, so that each has its own names.
var labs int

func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("the partition test needs ip (iproute2) and root")
	}
	labs++
	id := (os.Getpid()*10 + labs) % 100000
	subnet := fmt.Sprintf("10.213.%d", id%250+1) // a private range no test host uses
	l := &netLab{t: t, bridge: fmt.Sprintf("fgbr%d", id)}
	for i := range n { // left over by a run that was killed
		exec.Command("ip", "netns", "del", fmt.Sprintf("fgns%d-%d", id, i)).Run()
		exec.Command("ip", "link", "del", fmt.Sprintf("fgv%d-%d", id, i)).Run()
	}
	exec.Command("ip", "link", "del", l.bridge).Run()
	t.Cleanup(l.close)
	sh(t, "ip", "link", "add", l.bridge, "type", "bridge")
	sh(t, "ip", "addr", "add", subnet+".1/24", "dev", l.bridge)
	sh(t, "ip", "link", "set", l.bridge, "up")
	for i := range n {
		ns, veth, ip := fmt.Sprintf("fgns%d-%d", id, i), fmt.Sprintf("fgv%d-%d", id, i), fmt.Sprintf("%s.%d", subnet, i+2)
		l.ns, l.veths, l.ips = append(l.ns, ns), append(l.veths, veth), append(l.ips, ip)
		sh(t, "ip", "netns", "add", ns)
		sh(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		sh(t, "ip", "link", "set", veth, "master", l.bridge, "up")
		sh(t, "ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
		sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	return l
}

func (l *netLab) close() {
	for _, v := range l.veths {
		exec.Command("ip", "link", "del", v).Run()
	}
	for _, ns := range l.ns {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	exec.Command("ip", "link", "del", l.bridge).Run()
}

// cut takes node i off the network; heal puts it back.
func (l *netLab) cut(i int)  { sh(l.t, "ip", "link", "set", l.veths[i], "down") }
func (l *netLab) heal(i int) { sh(l.t, "ip", "link", "set", l.veths[i], "up") }

// TestE2E_PartitionConverges runs three nodes in three network namespaces,
// cuts one off, writes on both sides (HTTP ingest and a role change on the
// two, syslog from inside the namespace of the one), heals, and checks
// that every node ends with every record and the same role.
func TestE2E_PartitionConverges(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	lab := newNetLab(t, 3)
	dir := t.TempDir()
	var nodes []*proc
	for i := range 3 {
		ip := lab.ips[i]
		args := []string{"--cluster-node-id", fmt.Sprint("n", i), "--cluster-cookie", "a-cookie-of-sixteen-bytes-or-more",
			"--http-bind", ip + ":5080", "--mgmt-bind", ip + ":9113", "--syslog-bind", ip + ":5514",
			"--auth-dir", fmt.Sprintf("%s/n%d/auth", dir, i), "--log-dir", fmt.Sprintf("%s/n%d/logs", dir, i),
			"--config-dir", fmt.Sprintf("%s/n%d/config", dir, i)}
		if i > 0 {
			args = append(args, "--cluster-join-node-id", "n0", "--cluster-join-endpoint", "http://"+lab.ips[0]+":9113")
		}
		nodes = append(nodes, startIn(t, lab.ns[i], dir, nil, ip+":5080", ip+":9113", args...))
	}
	all := map[string]string{"n0": "alive", "n1": "alive", "n2": "alive"}
	waitMembers(t, nodes, all, 20*time.Second)
	tok := make([]string, 3)
	for i, n := range nodes {
		tok[i] = n.login("root", "root")
	}

	lab.cut(2)
	cutAt := time.Now()
	// The majority side: HTTP ingest and a role change.
	for k := range 20 {
		var recs []string
		for j := range 10 {
			recs = append(recs, fmt.Sprintf(`{"n":"a-%d-%d"}`, k, j))
		}
		if code, b := nodes[k%2].request(tok[k%2], "POST", "/api/v1/streams/app/logs/struct", `{"records":[`+strings.Join(recs, ",")+`]}`); code != 200 {
			t.Fatalf("ingest on the majority side: %d %s", code, b)
		}
	}
	if code, b := nodes[0].request(tok[0], "PUT", "/api/v1/roles/ops", `{"scopes":["read_streams"]}`); code/100 != 2 {
		t.Fatalf("role: %d %s", code, b)
	}
	// The cut-off side: syslog sent from inside its namespace.
	var lines []string
	for k := range 200 {
		lines = append(lines, fmt.Sprintf("b-%d", k))
	}
	logger := exec.Command("ip", "netns", "exec", lab.ns[2], "logger", "--udp", "--server", lab.ips[2], "--port", "5514", "--rfc5424", "--tag", "part")
	logger.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := logger.CombinedOutput(); err != nil {
		t.Fatalf("logger: %v %s", err, out)
	}
	// Long enough for the two sides to mark each other failed.
	waitMembers(t, nodes[:2], map[string]string{"n0": "alive", "n1": "alive", "n2": "failed"}, 30*time.Second)
	t.Logf("n2 marked failed %s after the cut", time.Since(cutAt).Round(time.Millisecond))

	lab.heal(2)
	healAt := time.Now()
	waitMembers(t, nodes, all, 30*time.Second)
	t.Logf("merged %s after the heal", time.Since(healAt).Round(time.Millisecond))
	eventually(t, 30*time.Second, "every node holds both sides' records and the role", func() bool {
		for i, n := range nodes {
			if len(n.queryAll(tok[i], "app", url.Values{"limit": {"1000"}})) != 200 {
				return false
			}
			code, b := n.request(tok[i], "GET", "/api/v1/streams/syslog/logs?limit=1000", "")
			if code != 200 || strings.Count(string(b), `"message":"b-`) != 200 {
				return false
			}
			if code, b := n.request(tok[i], "GET", "/api/v1/roles/ops", ""); code != 200 || !strings.Contains(string(b), "read_streams") {
				return false
			}
		}
		return true
	})
	t.Logf("converged %s after the heal", time.Since(healAt).Round(time.Millisecond))
}
