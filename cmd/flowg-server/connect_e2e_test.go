package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/flowg-server/flowg-server/internal/consultest"
	"github.com/flowg-server/flowg-server/internal/testwait"
)

// connectProxy runs Consul's own built-in proxy for service, with the
// given upstreams (service:localport): a mesh client not written here.
func connectProxy(t *testing.T, agent *consultest.Agent, service string, upstreams ...string) {
	t.Helper()
	args := []string{"connect", "proxy", "-http-addr", agent.URL(), "-service", service}
	for _, u := range upstreams {
		args = append(args, "-upstream", u)
	}
	cmd := exec.Command(consultest.Binary(t), args...)
	var mu sync.Mutex
	var out bytes.Buffer
	cmd.Stdout = syncWriter{&mu, &out}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("consul connect proxy output:\n%s", out.String())
			mu.Unlock()
		}
	})
}

// plain is an HTTP client without keep-alive: every request is a new
// connection through the proxy, so a changed intention applies to it.
var plain = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func call(method, url, token, body string) (int, string) {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := plain.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestE2E_ConsulConnect runs a node with --consul-connect against a real
// Consul agent (dev mode: Connect and its CA on) and reaches it the way a
// meshed application does, through Consul's built-in proxy: plain HTTP and
// plain syslog on the application's side, mutual TLS with the mesh's
// certificates on the wire. The records carry the sender's mesh identity;
// the service acts with the roles granted to it, with no token; intentions
// decide who connects; a client without the mesh's certificate is refused.
func TestE2E_ConsulConnect(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	agent := consultest.Start(t)
	client := agent.Client(t)
	dir := t.TempDir()
	httpAddr, mgmtAddr, apiAddr, syslogAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	n0 := start(t, dir, nil, httpAddr, mgmtAddr, append(nodeArgs(dir, 0, httpAddr, mgmtAddr),
		"--cluster-consul-url", agent.URL(), "--cluster-consul-check-interval", "1s", "--consul-connect",
		"--consul-connect-api-bind", apiAddr, "--consul-connect-syslog-bind", syslogAddr)...)
	tok := n0.login("root", "root")

	// Registered as Connect native services, passing.
	testwait.Eventually(t, 10*time.Second, "flowg-api and flowg-syslog passing in Consul's Connect catalog", func() bool {
		for _, svc := range []string{"flowg-api", "flowg-syslog"} {
			entries, _, err := client.Health().Connect(svc, "", true, nil)
			if err != nil || len(entries) != 1 || !entries[0].Service.Connect.Native {
				return false
			}
		}
		return true
	})

	upAPI, upSyslog := freeAddr(t), freeAddr(t)
	_, apiPort, _ := net.SplitHostPort(upAPI)
	_, syslogPort, _ := net.SplitHostPort(upSyslog)
	connectProxy(t, agent, "app", "flowg-api:"+apiPort, "flowg-syslog:"+syslogPort)
	base := "http://" + upAPI

	// Without a grant the mesh identity alone is not enough.
	testwait.Eventually(t, 15*time.Second, "the proxy's upstream answers", func() bool {
		code, _ := call("GET", base+"/api/v1/streams", "", "")
		return code == 401
	})
	if code, b := n0.request(tok, "PUT", "/api/v1/roles/shipper", `{"scopes":["send_logs","read_streams"]}`); code != 200 {
		t.Fatalf("role: %d %s", code, b)
	}
	if code, b := n0.request(tok, "PUT", "/api/v1/mesh/services/app", `{"roles":["shipper"]}`); code != 200 {
		t.Fatalf("grant: %d %s", code, b)
	}
	if code, b := call("POST", base+"/api/v1/streams/app/logs/struct", "", `{"records":[{"message":"through the mesh","n":"1"}]}`); code != 200 {
		t.Fatalf("ingest through the mesh: %d %s", code, b)
	}
	// A field only the server sets is refused, whoever sends it.
	if code, b := call("POST", base+"/api/v1/streams/app/logs/struct", "", `{"records":[{"message":"forged","mesh_service":"admin"}]}`); code != 400 || !strings.Contains(b, "mesh_service") {
		t.Fatalf("forged identity through the mesh: %d %s", code, b)
	}
	if code, b := n0.request(tok, "POST", "/api/v1/streams/app/logs/struct", `{"records":[{"message":"forged","mesh_service":"app"}]}`); code != 400 {
		t.Fatalf("forged identity on the plain port: %d %s", code, b)
	}
	// What the grant does not give, it does not get; a token still works on top.
	if code, _ := call("PUT", base+"/api/v1/roles/x", "", `{"scopes":[]}`); code != 403 {
		t.Fatalf("a scope not granted: %d", code)
	}
	if code, b := call("PUT", base+"/api/v1/roles/x", tok, `{"scopes":[]}`); code != 200 {
		t.Fatalf("a bearer token through the mesh: %d %s", code, b)
	}

	// Syslog through the mesh: util-linux logger over plain TCP on the
	// application's side.
	if out, err := exec.Command("logger", "--tcp", "--server", "127.0.0.1", "--port", syslogPort, "--rfc5424", "--tag", "app", "over the mesh").CombinedOutput(); err != nil {
		t.Fatalf("logger: %v %s", err, out)
	}

	var page struct {
		Records []struct{ Fields map[string]string }
	}
	testwait.Eventually(t, 10*time.Second, "the syslog message stored", func() bool {
		code, b := n0.request(tok, "GET", "/api/v1/streams/syslog/logs", "")
		return code == 200 && json.Unmarshal(b, &page) == nil && len(page.Records) == 1
	})
	want := map[string]string{"mesh_service": "app", "mesh_namespace": "default", "mesh_datacenter": "dc1"}
	for k, v := range want {
		if page.Records[0].Fields[k] != v {
			t.Errorf("syslog record %s = %q, want %q (%v)", k, page.Records[0].Fields[k], v, page.Records[0].Fields)
		}
	}
	code, b := n0.request(tok, "GET", "/api/v1/streams/app/logs", "")
	if code != 200 || json.Unmarshal(b, &page) != nil || len(page.Records) != 1 {
		t.Fatalf("query: %d %s", code, b)
	}
	for k, v := range want {
		if page.Records[0].Fields[k] != v {
			t.Errorf("HTTP record %s = %q, want %q", k, page.Records[0].Fields[k], v)
		}
	}

	// Intentions: deny, then allow again; each applies to the next connection.
	for _, action := range []api.IntentionAction{api.IntentionActionDeny, api.IntentionActionAllow} {
		if _, err := client.Connect().IntentionUpsert(&api.Intention{SourceName: "app", DestinationName: "flowg-api", Action: action}, nil); err != nil {
			t.Fatal(err)
		}
		took := testwait.Eventually(t, 15*time.Second, "intention "+string(action), func() bool {
			code, _ := call("GET", base+"/api/v1/streams", "", "")
			return (code == 200) == (action == api.IntentionActionAllow)
		})
		t.Logf("intention app => flowg-api %s applied to new connections %s after it was written", action, took.Round(time.Millisecond))
	}

	// A client that is not in the mesh reaches nothing.
	stranger := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := stranger.Get("https://" + apiAddr + "/api/v1/openapi.json"); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a mesh certificate was served: %s", resp.Status)
	}
	if !strings.Contains(scrape(t, n0), `flowg_mesh_denied_total{reason="no_certificate",service="flowg-api"} 1`) {
		t.Error("the refused client is not counted")
	}
}

// scrape returns the node's /metrics.
func scrape(t *testing.T, p *proc) string {
	t.Helper()
	resp, err := p.mgmtGet("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestE2E_ConsulConnectCluster: three nodes with --consul-connect find each
// other in Consul and gossip and replicate over mutual TLS with the
// cluster service's mesh certificates; a process holding another
// service's certificate, or none, is refused on the routes between nodes,
// while /health stays open to the agent's check.
func TestE2E_ConsulConnectCluster(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	agent := consultest.Start(t)
	client := agent.Client(t)
	dir := t.TempDir()
	var nodes []*proc
	for i := range 3 {
		httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
		nodes = append(nodes, start(t, dir, nil, httpAddr, mgmtAddr, append(nodeArgs(dir, i, httpAddr, mgmtAddr),
			"--cluster-consul-url", agent.URL(), "--cluster-consul-check-interval", "1s", "--consul-connect",
			"--consul-connect-api-bind", freeAddr(t), "--consul-connect-syslog-bind", freeAddr(t))...))
	}
	waitMembers(t, nodes, map[string]string{"n0": "alive", "n1": "alive", "n2": "alive"}, 20*time.Second)
	waitPassing(t, client, []string{"n0", "n1", "n2"}, 10*time.Second)

	tok := nodes[0].login("root", "root")
	if code, b := nodes[0].request(tok, "POST", "/api/v1/streams/app/logs/struct", `{"records":[{"n":"1"}]}`); code != 200 {
		t.Fatalf("ingest: %d %s", code, b)
	}
	tok2 := nodes[2].login("root", "root")
	testwait.Eventually(t, 10*time.Second, "the record replicated to n2 over mutual TLS", func() bool {
		return len(nodes[2].queryAll(tok2, "app", nil)) == 1
	})

	leaf, _, err := client.Agent().ConnectCALeaf("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	appCert, err := tls.X509KeyPair([]byte(leaf.CertPEM), []byte(leaf.PrivateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	withApp := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{appCert}}}}
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	mgmt := "https://" + nodes[0].mgmt
	for _, path := range []string{"/cluster/gossip", "/cluster/repl/pull"} {
		if resp, err := withApp.Post(mgmt+path, "application/octet-stream", strings.NewReader("x")); err == nil {
			resp.Body.Close()
			t.Errorf("%s: the app service's certificate was taken: %s", path, resp.Status)
		}
		resp, err := noCert.Post(mgmt+path, "application/octet-stream", strings.NewReader("x"))
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s without a certificate: %v %v, want 403", path, resp, err)
		} else {
			resp.Body.Close()
		}
	}
	if resp, err := noCert.Get(mgmt + "/health"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/health without a certificate: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	if !strings.Contains(scrape(t, nodes[0]), `flowg_mesh_denied_total{reason="identity",service="flowg"}`) {
		t.Error("the app service's attempts are not counted")
	}
	if got := nodes[1].members(); len(got) != 3 {
		t.Errorf("members after the intruder: %v", got)
	}
}
