package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/internal/testwait"
)

// serverBin is the flowg-server built once for the end-to-end tests.
var serverBin string

func TestMain(m *testing.M) {
	// The nodes find Consul only where a test says so.
	for _, v := range []string{"CONSUL_HTTP_ADDR", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_CACERT", "CONSUL_HTTP_SSL"} {
		os.Unsetenv(v)
	}
	dir, err := os.MkdirTemp("", "flowg-e2e-")
	if err != nil {
		panic(err)
	}
	serverBin = filepath.Join(dir, "flowg-server")
	out, err := exec.Command("go", "build", "-race", "-o", serverBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot build flowg-server: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running flowg-server.
type proc struct {
	t          testing.TB
	cmd        *exec.Cmd
	log        *bytes.Buffer
	logMu      *sync.Mutex
	http, mgmt string
	done       chan error
	dir        string
	env, args  []string
	netns      string
}

// mgmtGet asks the node's management port: over https, certificate
// unchecked, when the node serves it with the mesh's certificates.
func mgmtGet(args, env []string, addr, path string) (*http.Response, error) {
	if slices.Contains(args, "--consul-connect") || slices.Contains(env, "FLOWG_CONSUL_CONNECT=true") {
		insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		return insecure.Get("https://" + addr + path)
	}
	return http.Get("http://" + addr + path)
}

func (p *proc) mgmtGet(path string) (*http.Response, error) {
	return mgmtGet(p.args, p.env, p.mgmt, path)
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// freeAddr returns a loopback address with a port free at the time of asking.
// It is taken below the kernel's range of ephemeral ports (32768 and up
// by default), so that the source port of some connection a test (or the
// node) opens meanwhile cannot take it before the node binds it.
func freeAddr(t testing.TB) string {
	t.Helper()
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port from 20000 to 32000")
	return ""
}

// start runs flowg-server in dir with env added to the environment and waits
// until /ready answers 200 on mgmt.
func start(t testing.TB, dir string, env []string, httpAddr, mgmtAddr string, args ...string) *proc {
	t.Helper()
	return startIn(t, "", dir, env, httpAddr, mgmtAddr, args...)
}

// startIn is start inside a network namespace (none when netns is empty).
func startIn(t testing.TB, netns, dir string, env []string, httpAddr, mgmtAddr string, args ...string) *proc {
	t.Helper()
	return startWhen(t, func(code int, _ []byte) bool { return code == 200 }, netns, dir, env, httpAddr, mgmtAddr, args...)
}

// startWhen is startIn waiting until /ready's answer satisfies ready.
func startWhen(t testing.TB, ready func(code int, body []byte) bool, netns, dir string, env []string, httpAddr, mgmtAddr string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(serverBin, args...)
	if netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", netns, serverBin}, args...)...)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	p := &proc{t: t, cmd: cmd, log: &bytes.Buffer{}, logMu: &sync.Mutex{}, http: httpAddr, mgmt: mgmtAddr, done: make(chan error, 1),
		dir: dir, env: env, args: args, netns: netns}
	cmd.Stdout = syncWriter{p.logMu, p.log}
	cmd.Stderr = syncWriter{p.logMu, p.log}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("log of flowg-server %v:\n%s", args, p.logText())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("flowg-server exited at start: %v\n%s", err, p.logText())
		default:
		}
		if resp, err := mgmtGet(args, env, mgmtAddr, "/ready"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if ready(resp.StatusCode, b) {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("flowg-server not ready (as the test expects) within 30s:\n%s", p.logText())
	return nil
}

// restart starts the process again with the same flags (after it exited
// or was killed).
func (p *proc) restart() *proc {
	p.t.Helper()
	return startIn(p.t, p.netns, p.dir, p.env, p.http, p.mgmt, p.args...)
}

func (p *proc) logText() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(60 * time.Second):
		p.t.Fatal("flowg-server did not exit within 60s")
		return -1
	}
}

func (p *proc) request(token, method, path, body string) (int, []byte) {
	p.t.Helper()
	req, _ := http.NewRequest(method, "http://"+p.http+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (p *proc) login(user, pw string) string {
	p.t.Helper()
	code, b := p.request("", "POST", "/api/v1/auth/login", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw))
	var out struct{ Token string }
	if code != 200 || json.Unmarshal(b, &out) != nil {
		p.t.Fatalf("login: %d %s", code, b)
	}
	return out.Token
}

type recordsPage struct {
	Records []struct {
		Timestamp string
		Fields    map[string]string
	}
	NextCursor string `json:"next_cursor"`
}

// queryAll follows cursors and returns every record's "n" field; none
// when the stream does not exist (yet: replication may not have brought it).
func (p *proc) queryAll(token, stream string, params url.Values) []string {
	p.t.Helper()
	var out []string
	for range 10_000 {
		code, b := p.request(token, "GET", "/api/v1/streams/"+stream+"/logs?"+params.Encode(), "")
		if code == http.StatusNotFound && out == nil {
			return nil
		}
		var pg recordsPage
		if code != 200 || json.Unmarshal(b, &pg) != nil {
			p.t.Fatalf("query %v: %d %s", params, code, b)
		}
		for _, r := range pg.Records {
			out = append(out, r.Fields["n"])
		}
		if pg.NextCursor == "" {
			return out
		}
		params.Set("cursor", pg.NextCursor)
	}
	p.t.Fatal("query does not end")
	return nil
}

// members returns node ID → status from the node's /cluster/nodes.
func (p *proc) members() map[string]string {
	p.t.Helper()
	resp, err := p.mgmtGet("/cluster/nodes")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Nodes []struct {
			ID     string `json:"node-id"`
			Status string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		p.t.Fatalf("/cluster/nodes: %v", err)
	}
	out := map[string]string{}
	for _, n := range v.Nodes {
		out[n.ID] = n.Status
	}
	return out
}

// nodeID is the ID of a node that is alone in its cluster.
func (p *proc) nodeID() string {
	p.t.Helper()
	m := p.members()
	if len(m) != 1 {
		p.t.Fatalf("/cluster/nodes lists %v, want this node alone", m)
	}
	for id := range m {
		return id
	}
	return ""
}

// waitMembers waits until every node lists exactly want.
func waitMembers(t testing.TB, nodes []*proc, want map[string]string, within time.Duration) {
	t.Helper()
	waitStatuses(t, nodes, want, within, true)
}

// waitStatuses waits until every node lists the nodes of want with their
// status, and no other node when exact; it polls every 10 ms, so that
// benchmarks can time it.
func waitStatuses(t testing.TB, nodes []*proc, want map[string]string, within time.Duration, exact bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok := true
		for _, n := range nodes {
			got := n.members()
			if exact && len(got) != len(want) {
				ok = false
			}
			for id, st := range want {
				if got[id] != st {
					ok = false
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, n := range nodes {
				t.Logf("%s sees %v", n.mgmt, n.members())
			}
			t.Fatalf("members not %v within %s", want, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestE2E_NoFlags_KillAndRestart is the first-run story: no flags (the
// listeners moved to loopback through FLOWG_* variables), log in, ingest,
// query with filters and pages, tail, kill -9, restart, and find every
// acknowledged record and the same node ID.
func TestE2E_NoFlags_KillAndRestart(t *testing.T) {
	dir := t.TempDir()
	httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	env := []string{"FLOWG_HTTP_BIND=" + httpAddr, "FLOWG_MGMT_BIND=" + mgmtAddr, "FLOWG_SYSLOG_BIND=127.0.0.1:0"}
	p := start(t, dir, env, httpAddr, mgmtAddr)
	for _, sub := range []string{"auth", "logs", "config", "state/node-id"} {
		if _, err := os.Stat(filepath.Join(dir, "data", sub)); err != nil {
			t.Fatalf("default layout: %v", err)
		}
	}
	if !strings.Contains(p.logText(), "default password") {
		t.Fatal("no warning about the default password")
	}
	id := p.nodeID()
	tok := p.login("root", "root")

	// A live tail, open before the records arrive.
	tailReq, _ := http.NewRequest("GET", "http://"+httpAddr+"/api/v1/streams/app/logs/watch?filter="+url.QueryEscape(`level = "error"`), nil)
	tailReq.Header.Set("Authorization", "Bearer "+tok)
	if code, b := p.request(tok, "POST", "/api/v1/streams/app/logs/text", "create the stream\n"); code != 200 {
		t.Fatalf("ingest: %d %s", code, b)
	}
	tail, err := http.DefaultClient.Do(tailReq)
	if err != nil || tail.StatusCode != 200 {
		t.Fatalf("watch: %v %v", err, tail)
	}
	defer tail.Body.Close()
	tailed := make(chan int, 1)
	go func() {
		n := 0
		sc := bufio.NewScanner(tail.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				if n++; n == 100 {
					break
				}
			}
		}
		tailed <- n
	}()

	acked := 0
	for batch := range 30 {
		var recs []string
		for i := range 10 {
			n := batch*10 + i
			recs = append(recs, fmt.Sprintf(`{"n":"%d","level":"%s","message":"record %d"}`, n, []string{"info", "error", "warn"}[n%3], n))
		}
		code, b := p.request(tok, "POST", "/api/v1/streams/app/logs/struct", `{"records":[`+strings.Join(recs, ",")+`]}`)
		if code != 200 {
			t.Fatalf("ingest batch %d: %d %s", batch, code, b)
		}
		acked += 10
	}
	select {
	case n := <-tailed:
		if n != 100 {
			t.Fatalf("the tail saw %d error records, want 100", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the tail did not see 100 error records")
	}
	check := func(p *proc, tok string) {
		t.Helper()
		all := p.queryAll(tok, "app", url.Values{"limit": {"37"}, "filter": {`n != ""`}})
		if len(all) != acked {
			t.Fatalf("found %d of %d acknowledged records", len(all), acked)
		}
		errs := p.queryAll(tok, "app", url.Values{"limit": {"7"}, "filter": {`level = "error" and message ~= "record [0-9]*5$"`}, "order": {"asc"}})
		if len(errs) != 10 || errs[0] != "25" || errs[9] != "295" {
			t.Fatalf("filtered pages = %v", errs)
		}
	}
	check(p, tok)

	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait()
	// How long the node was down is kept in its state directory (the
	// process runs in dir), which the restart reads.
	if _, err := os.Stat(filepath.Join(dir, "data", "state", "last-seen")); err != nil {
		t.Fatalf("last-seen: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "last-seen")); err == nil {
		t.Fatal("last-seen written to the working directory")
	}
	p = start(t, dir, env, httpAddr, mgmtAddr)
	if got := p.nodeID(); got != id {
		t.Fatalf("node ID changed across restart: %s then %s", id, got)
	}
	if strings.Contains(p.logText(), "created the initial user") {
		t.Fatal("the initial user was created again")
	}
	check(p, p.login("root", "root"))
}

// TestE2E_SIGTERM_DrainsAndExitsZero sends SIGTERM during steady ingest: the
// process exits 0, and every request answered 200 is stored.
func TestE2E_SIGTERM_DrainsAndExitsZero(t *testing.T) {
	dir := t.TempDir()
	httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	args := []string{"--http-bind", httpAddr, "--mgmt-bind", mgmtAddr, "--syslog-bind", "127.0.0.1:0", "--log-format", "json"}
	p := start(t, dir, nil, httpAddr, mgmtAddr, args...)
	tok := p.login("root", "root")
	var mu sync.Mutex
	acked := 0
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				code, _ := p.request(tok, "POST", "/api/v1/streams/app/logs/struct", fmt.Sprintf(`{"records":[{"n":"%d-%d"}]}`, w, i))
				if code != 200 {
					return
				}
				mu.Lock()
				acked++
				mu.Unlock()
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	wg.Wait()
	for _, step := range []string{"stop ingest", "stop public API", "close stores"} {
		if !strings.Contains(p.logText(), `"step":"`+step+`"`) {
			t.Errorf("the shutdown log lacks the step %q", step)
		}
	}
	p = start(t, dir, nil, httpAddr, mgmtAddr, args...)
	got := p.queryAll(p.login("root", "root"), "app", url.Values{"limit": {"10000"}})
	if len(got) < acked || acked == 0 {
		t.Fatalf("stored %d records, %d were acknowledged", len(got), acked)
	}
}

// TestE2E_ThreeNodeExample runs the three command lines of the README
// verbatim (the default ports on 127.0.0.1), with and without a cookie: node
// 2 joins through node 1, yet every node lists all three within seconds, and
// no two share a file. Then node 1 is killed with kill -9 and restarted with
// no join flags: it rejoins from its snapshot.
func TestE2E_ThreeNodeExample(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	for _, cookie := range []string{"", "0123456789abcdef0123456789abcdef"} {
		dir := t.TempDir()
		var nodes []*proc
		argsOf := func(i int, join bool) []string {
			args := []string{"--cluster-node-id", fmt.Sprintf("flowg-node%d", i)}
			if join && i > 0 {
				args = append(args, "--cluster-join-node-id", fmt.Sprintf("flowg-node%d", i-1),
					"--cluster-join-endpoint", fmt.Sprintf("http://localhost:%d", 9113+i-1))
			}
			args = append(args,
				"--auth-dir", fmt.Sprintf("./data/node%d/auth", i), "--log-dir", fmt.Sprintf("./data/node%d/logs", i),
				"--config-dir", fmt.Sprintf("./data/node%d/config", i),
				"--http-bind", fmt.Sprintf("127.0.0.1:%d", 5080+i), "--mgmt-bind", fmt.Sprintf("127.0.0.1:%d", 9113+i),
				"--syslog-bind", fmt.Sprintf("127.0.0.1:%d", 5514+i))
			if cookie != "" {
				args = append(args, "--cluster-cookie", cookie)
			}
			return args
		}
		startNode := func(i int, join bool) *proc {
			return start(t, dir, nil, fmt.Sprintf("127.0.0.1:%d", 5080+i), fmt.Sprintf("127.0.0.1:%d", 9113+i), argsOf(i, join)...)
		}
		formStart := time.Now()
		for i := range 3 {
			nodes = append(nodes, startNode(i, true))
		}
		all := map[string]string{"flowg-node0": "alive", "flowg-node1": "alive", "flowg-node2": "alive"}
		waitMembers(t, nodes, all, 10*time.Second)
		t.Logf("cookie=%v: three nodes formed %s after the first start", cookie != "", time.Since(formStart).Round(10*time.Millisecond))
		for _, n := range nodes {
			if cookie != "" && strings.Contains(n.logText(), cookie) {
				t.Fatal("the cookie appears in the log")
			}
		}

		nodes[1].cmd.Process.Signal(syscall.SIGKILL)
		nodes[1].wait()
		waitMembers(t, []*proc{nodes[0], nodes[2]}, map[string]string{"flowg-node0": "alive", "flowg-node1": "failed", "flowg-node2": "alive"}, 30*time.Second)
		nodes[1] = startNode(1, false)
		waitMembers(t, nodes, all, 20*time.Second)
		// Every file under data/ belongs to exactly one node's directory.
		filepath.WalkDir(filepath.Join(dir, "data"), func(path string, d os.DirEntry, err error) error {
			rel, _ := filepath.Rel(filepath.Join(dir, "data"), path)
			if !d.IsDir() && !strings.HasPrefix(rel, "node") {
				t.Errorf("%s is outside every node's directory", rel)
			}
			return nil
		})
		for i := range 3 {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("data/node%d/state/node-id", i))); err != nil {
				t.Errorf("node %d state: %v", i, err)
			}
		}
		for _, n := range nodes {
			n.cmd.Process.Signal(syscall.SIGTERM)
			if code := n.wait(); code != 0 {
				t.Fatalf("exit code %d", code)
			}
		}
	}
}

// TestE2E_BadFlags checks that each bad value stops the start with one line
// that names its flag, and that flags win over FLOWG_* variables.
func TestE2E_BadFlags(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	cases := []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--http-bind", "nonsense"}, "", "--http-bind"},
		{[]string{"--mgmt-bind", "127.0.0.1:99999"}, "", "--mgmt-bind"},
		{nil, "FLOWG_SYSLOG_BIND=:x", "--syslog-bind"},
		{[]string{"--cluster-join-endpoint", "ftp://x:1"}, "", "--cluster-join-endpoint"},
		{[]string{"--cluster-join-endpoint", "http://"}, "", "--cluster-join-endpoint"},
		{[]string{"--cluster-join-node-id", "a"}, "", "--cluster-join-node-id needs --cluster-join-endpoint"},
		{[]string{"--cluster-node-id", "bad id"}, "", "--cluster-node-id"},
		{[]string{"--cluster-cookie", "short"}, "", "--cluster-cookie is 5 bytes"},
		{[]string{"--auth-dir", filepath.Join(dir, "file", "x")}, "", "--auth-dir"},
		{[]string{"--log-level", "loud"}, "", "--log-level"},
		{[]string{"--http-tls"}, "", "--http-tls needs --http-tls-cert"},
		{[]string{"--cluster-consul-url", "ftp://x:1"}, "", "--cluster-consul-url"},
		{[]string{"--cluster-consul-deregister-after", "10s"}, "", "Consul's minimum is 1m"},
		{[]string{"--cluster-consul-service", "a b"}, "", "--cluster-consul-service"},
		{[]string{"--cluster-dns-interval", "10ms"}, "", "--cluster-dns-interval"},
		{[]string{"--cluster-tombstone-window", "1m"}, "", "--cluster-tombstone-window"},
		{nil, "FLOWG_INGEST_COPY_TIMEOUT=-1s", "--ingest-copy-timeout"},
		{nil, "FLOWG_CONSUL_CONNECT=true", "--consul-connect needs the Consul agent's address"},
		{[]string{"--consul-connect", "--cluster-consul-url", "http://127.0.0.1:1", "--mgmt-tls"}, "", "drop --mgmt-tls"},
	}
	for _, c := range cases {
		cmd := exec.CommandContext(context.Background(), serverBin, c.args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), c.env)
		out, err := cmd.CombinedOutput()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if err == nil || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%v %s: err %v, output %q; want one line with %q", c.args, c.env, err, out, c.want)
		}
		if strings.Contains(string(out), "short") && strings.Contains(c.want, "cookie") {
			t.Errorf("the cookie appears in the error: %s", out)
		}
	}
	// Told to join the mesh with no agent to get its certificates from: it
	// does not start, and its last line says what is missing.
	cmd := exec.Command(serverBin, "--consul-connect", "--cluster-consul-url", "http://127.0.0.1:1",
		"--http-bind", freeAddr(t), "--mgmt-bind", freeAddr(t), "--syslog-bind", "127.0.0.1:0",
		"--consul-connect-api-bind", freeAddr(t), "--consul-connect-syslog-bind", freeAddr(t))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err == nil || !strings.Contains(lines[len(lines)-1], "--consul-connect: cannot get the Consul Connect CA roots") {
		t.Errorf("--consul-connect without a reachable agent: %v, output:\n%s", err, out)
	}
	out, err = exec.Command(serverBin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "flowg-server ") {
		t.Errorf("--version: %v %s", err, out)
	}
	// The flag wins over a bad environment value.
	httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	start(t, dir, []string{"FLOWG_HTTP_BIND=nonsense", "FLOWG_MGMT_BIND=" + mgmtAddr}, httpAddr, mgmtAddr,
		"--http-bind", httpAddr, "--syslog-bind", "127.0.0.1:0")
}

// TestE2E_JoinRetriesUntilThePeerIsUp starts a node whose join endpoint is
// not up yet: it serves meanwhile, and joins once the peer comes.
func TestE2E_JoinRetriesUntilThePeerIsUp(t *testing.T) {
	dir := t.TempDir()
	h0, m0, h1, m1 := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	common := func(i int, h, m string) []string {
		return []string{"--cluster-node-id", fmt.Sprintf("n%d", i), "--http-bind", h, "--mgmt-bind", m, "--syslog-bind", "127.0.0.1:0",
			"--auth-dir", fmt.Sprintf("%s/n%d/auth", dir, i), "--log-dir", fmt.Sprintf("%s/n%d/logs", dir, i),
			"--config-dir", fmt.Sprintf("%s/n%d/config", dir, i), "--cluster-cookie", "a-cookie-of-sixteen-bytes-or-more"}
	}
	n1 := start(t, dir, nil, h1, m1, append(common(1, h1, m1), "--cluster-join-node-id", "n0", "--cluster-join-endpoint", "http://"+m0)...)
	if code, _ := n1.request("", "GET", "/api/v1/openapi.json", ""); code != 200 {
		t.Fatalf("the node does not serve while it cannot join: %d", code)
	}
	time.Sleep(time.Second)
	n0 := start(t, dir, nil, h0, m0, common(0, h0, m0)...)
	waitMembers(t, []*proc{n0, n1}, map[string]string{"n0": "alive", "n1": "alive"}, 15*time.Second)
	testwait.Eventually(t, 10*time.Second, "the join retries in the log", func() bool {
		return strings.Contains(n1.logText(), "cannot join the cluster yet") && strings.Contains(n1.logText(), "joined the cluster")
	})
}

// TestE2E_BackAtAnotherAddress: a node killed with kill -9 and started
// again under its node ID at other ports (a rescheduled pod: same name,
// new IP) is taken in at its new address by the others: at once when they
// had seen it fail, within seconds when it came back before that.
func TestE2E_BackAtAnotherAddress(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	dir := t.TempDir()
	nodes := threeNodes(t, dir)
	aliveAt := func(p *proc, id, endpoint string) bool {
		resp, err := http.Get("http://" + p.mgmt + "/cluster/nodes")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var v struct {
			Nodes []struct {
				ID       string `json:"node-id"`
				Endpoint string
				Status   string
			}
		}
		json.NewDecoder(resp.Body).Decode(&v)
		for _, n := range v.Nodes {
			if n.ID == id && n.Endpoint == endpoint && n.Status == "alive" {
				return true
			}
		}
		return false
	}
	for _, seenFailed := range []bool{true, false} {
		nodes[1].cmd.Process.Kill()
		nodes[1].wait()
		if seenFailed {
			waitStatuses(t, []*proc{nodes[0], nodes[2]}, map[string]string{"n1": "failed"}, 20*time.Second, false)
		}
		httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
		args := append([]string(nil), nodes[1].args...)
		for i, a := range args {
			switch a {
			case nodes[1].http:
				args[i] = httpAddr
			case nodes[1].mgmt:
				args[i] = mgmtAddr
			}
		}
		began := time.Now()
		nodes[1] = start(t, dir, nil, httpAddr, mgmtAddr, args...)
		eventually(t, 20*time.Second, "n0 and n2 see n1 alive at its new address", func() bool {
			return aliveAt(nodes[0], "n1", "http://"+mgmtAddr) && aliveAt(nodes[2], "n1", "http://"+mgmtAddr)
		})
		t.Logf("old address seen failed first: %v; n1 alive at its new address on both others %s after its start", seenFailed, time.Since(began).Round(time.Millisecond))
	}
}
