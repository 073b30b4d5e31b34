package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/flowg-server/flowg-server/internal/consultest"
)

// The compose and Nomad topologies of deploy/, reproduced with real
// processes on loopback: the flags and variables are read from the
// manifests themselves, and only what a container or an allocation would
// supply (addresses, directories, the secret) is substituted, so that the
// manifests carry flags proven to work.

const deployCookie = "a-cookie-of-sixteen-bytes-or-more"

// bindEnv replaces the image's all-interfaces binds with loopback ones.
func bindEnv(t testing.TB, k, v, httpAddr, mgmtAddr string) string {
	switch k {
	case "FLOWG_HTTP_BIND":
		return httpAddr
	case "FLOWG_MGMT_BIND":
		return mgmtAddr
	case "FLOWG_SYSLOG_BIND":
		return "127.0.0.1:0"
	case "FLOWG_CONSUL_CONNECT_API_BIND", "FLOWG_CONSUL_CONNECT_SYSLOG_BIND":
		return freeAddr(t)
	}
	return v
}

// TestE2E_ComposeTopology runs the three nodes of compose.yaml (with the
// image's environment) against a real Consul agent: they register, pass
// their checks, and form one cluster.
func TestE2E_ComposeTopology(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	c := readCompose(t)
	image := dockerEnv(t)
	agent := consultest.Start(t)
	dir := t.TempDir()
	var nodes []*proc
	var envs [][]string
	want := map[string]string{}
	for _, name := range c.flowgServices() {
		s := c.Services[name]
		httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
		rw := strings.NewReplacer("http://consul:8500", agent.URL(), name+":9113", mgmtAddr, "/data", filepath.Join(dir, name))
		var env []string
		for k, v := range image {
			env = append(env, k+"="+rw.Replace(bindEnv(t, k, v, httpAddr, mgmtAddr)))
		}
		for k, v := range s.Environment {
			if k == "FLOWG_CLUSTER_COOKIE" {
				v = deployCookie // what the operator exports
			}
			env = append(env, k+"="+rw.Replace(v))
		}
		var args []string
		for _, a := range s.Command {
			args = append(args, rw.Replace(a))
		}
		if s.Environment["FLOWG_CONSUL_CONNECT"] == "true" {
			// Each container has the mesh ports to itself; here they share a host.
			env = append(env, "FLOWG_CONSUL_CONNECT_API_BIND="+freeAddr(t), "FLOWG_CONSUL_CONNECT_SYSLOG_BIND="+freeAddr(t))
		}
		nodes = append(nodes, start(t, dir, env, httpAddr, mgmtAddr, args...))
		envs = append(envs, env)
		want[name] = "alive"
	}
	client := agent.Client(t)
	waitPassing(t, client, c.flowgServices(), 15*time.Second)
	waitMembers(t, nodes, want, 15*time.Second)

	// The image's health check, with a node's environment: 0 while it
	// serves, 1 once it is gone.
	probe := func() error {
		cmd := exec.Command(serverBin, "--health-probe")
		cmd.Env = append(os.Environ(), envs[0]...)
		return cmd.Run()
	}
	if err := probe(); err != nil {
		t.Errorf("--health-probe of a serving node: %v", err)
	}
	nodes[0].cmd.Process.Signal(syscall.SIGTERM)
	nodes[0].wait()
	if err := probe(); err == nil {
		t.Error("--health-probe of a stopped node exits 0")
	}
}

// TestE2E_NomadTopology runs the task of flowg.nomad.hcl count times, with
// Nomad's runtime variables filled in and the cookie from the template,
// registers each allocation's service in a real Consul agent as Nomad
// would (name, management port, HTTP check), and checks that the nodes find
// each other through Consul DNS and form one cluster.
func TestE2E_NomadTopology(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	j := readNomad(t)
	count, err := strconv.Atoi(j.count)
	if err != nil {
		t.Fatal(err)
	}
	agent := consultest.Start(t)
	client := agent.Client(t)
	interval, err := time.ParseDuration(j.checkInterval)
	if err != nil {
		t.Fatalf("check interval %q: %v", j.checkInterval, err)
	}
	dir := t.TempDir()
	var nodes []*proc
	want := map[string]string{}
	for i := range count {
		httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
		rw := strings.NewReplacer("${NOMAD_ALLOC_INDEX}", strconv.Itoa(i), "${NOMAD_HOST_ADDR_mgmt}", mgmtAddr,
			"${attr.unique.network.ip-address}:8600", agent.DNSAddr, "${NOMAD_ALLOC_DIR}", filepath.Join(dir, fmt.Sprint("alloc", i)))
		var args []string
		for _, a := range j.args {
			args = append(args, rw.Replace(a))
		}
		var env []string
		for k, v := range j.env {
			env = append(env, k+"="+bindEnv(t, k, v, httpAddr, mgmtAddr))
		}
		// The template renders the variable's value; Nomad hands a Connect
		// native task the local agent's address.
		env = append(env, "FLOWG_CLUSTER_COOKIE="+deployCookie, "CONSUL_HTTP_ADDR="+agent.HTTPAddr)
		p := start(t, dir, env, httpAddr, mgmtAddr, args...)
		nodes = append(nodes, p)
		want[fmt.Sprint("flowg-", i)] = "alive"

		port, _ := strconv.Atoi(mgmtAddr[strings.LastIndex(mgmtAddr, ":")+1:])
		u := url.URL{Scheme: j.checkProtocol, Host: mgmtAddr, Path: j.checkPath}
		err := client.Agent().ServiceRegister(&api.AgentServiceRegistration{
			ID: fmt.Sprintf("_nomad-task-alloc%d-flowg-server-%s-mgmt", i, j.service), Name: j.service,
			Address: "127.0.0.1", Port: port,
			Check: &api.AgentServiceCheck{HTTP: u.String(), TLSSkipVerify: true, Interval: interval.String(), Timeout: "2s"},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Nomad's checks start critical and pass at their first run, within
	// one interval.
	waitMembers(t, nodes, want, 2*interval+15*time.Second)
}
