// Package consultest runs a real Consul agent in -dev mode on loopback for
// tests. The binary is $FLOWG_CONSUL, else the one scripts/consul.sh builds
// and caches; a test fails, never skips, when neither can be had.
package consultest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Agent is a Consul agent in -dev mode: a single server whose catalog
// lives in memory, so a restart forgets every service.
type Agent struct {
	// HTTPAddr and DNSAddr are host:port on 127.0.0.1.
	HTTPAddr, DNSAddr string

	t    testing.TB
	args []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of the Consul agent.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("FLOWG_CONSUL"); p != "" {
			binPath = p
			return
		}
		root, err := moduleRoot()
		if err != nil {
			binErr = err
			return
		}
		var stderr bytes.Buffer
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "consul.sh"))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			binErr = fmt.Errorf("scripts/consul.sh: %v: %s", err, stderr.String())
			return
		}
		binPath = strings.TrimSpace(string(out))
	})
	if binErr != nil {
		t.Fatalf("the Consul agent is required (make -s consul-path builds it): %v", binErr)
	}
	return binPath
}

// Start starts an agent on free loopback ports and waits until it has a
// leader; it is stopped when the test ends.
func Start(t testing.TB) *Agent {
	t.Helper()
	bin := Binary(t)
	a := &Agent{t: t, HTTPAddr: freePort(t), DNSAddr: freePort(t)}
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	serfLAN, server := freePort(t), freePort(t)
	hcl := fmt.Sprintf(`ports { http = %s, dns = %s, serf_lan = %s, server = %s, serf_wan = -1, grpc = -1, grpc_tls = -1 }`,
		port(a.HTTPAddr), port(a.DNSAddr), port(serfLAN), port(server))
	a.args = []string{bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-node", "consul-test", "-log-level", "warn", "-hcl", hcl}
	a.start()
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			a.mu.Lock()
			t.Logf("consul agent output:\n%s", a.out.String())
			a.mu.Unlock()
		}
	})
	return a
}

// Client is a Consul API client of the agent.
func (a *Agent) Client(t testing.TB) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = a.URL()
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// URL is the agent's HTTP address as a URL.
func (a *Agent) URL() string { return "http://" + a.HTTPAddr }

// Stop kills the agent (its in-memory catalog is lost).
func (a *Agent) Stop() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Restart stops the agent and starts it again on the same ports.
func (a *Agent) Restart() {
	a.t.Helper()
	a.Stop()
	a.start()
}

func (a *Agent) start() {
	a.t.Helper()
	cmd := exec.Command(a.args[0], a.args[1:]...)
	a.mu.Lock()
	if a.out == nil {
		a.out = &bytes.Buffer{}
	}
	cmd.Stdout = lockedWriter{&a.mu, a.out}
	cmd.Stderr = cmd.Stdout
	a.cmd, a.done = cmd, make(chan struct{})
	done := a.done
	a.mu.Unlock()
	var err error
	// The ports of a killed agent can take a moment to be free again.
	for range 50 {
		if err = cmd.Start(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		a.t.Fatalf("consul agent: %v", err)
	}
	go func() { cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(a.URL() + "/v1/status/leader")
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && len(bytes.Trim(b.Bytes(), `" `+"\n")) > 0 {
				return
			}
		}
		select {
		case <-done:
			a.mu.Lock()
			defer a.mu.Unlock()
			a.t.Fatalf("consul agent exited: %s", a.out.String())
		default:
		}
		if time.Now().After(deadline) {
			a.t.Fatal("consul agent has no leader after 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// freePort returns a 127.0.0.1 port that was free for both TCP and UDP a
// moment ago (serf and DNS use both).
func freePort(t testing.TB) string {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return ""
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
