package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"gopkg.in/yaml.v3"

	"github.com/flowg-server/flowg-server/internal/consultest"
)

// The manifests under deploy/ are checked against the binary: every flag
// and FLOWG_* variable they use is one `flowg-server --help` lists, and the
// ports they publish are the defaults (5080 API, 9113 management, 5514
// syslog).

const deployDir = "../../deploy"

// helpFlags are the flag names `flowg-server --help` lists.
func helpFlags(t testing.TB) map[string]bool {
	t.Helper()
	out, _ := exec.Command(serverBin, "--help").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 20 || !flags["cluster-cookie"] {
		t.Fatalf("--help lists %d flags:\n%s", len(flags), out)
	}
	return flags
}

// checkArgs checks every --flag of a flowg-server command line.
func checkArgs(t *testing.T, file string, args []string, flags map[string]bool) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no flowg-server arguments found", file)
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !flags[name] {
			t.Errorf("%s: %s is not a flag of flowg-server --help", file, a)
		}
	}
}

// checkEnv checks FLOWG_* names: each must be a flag's variable.
func checkEnv(t *testing.T, file string, names []string, flags map[string]bool) {
	t.Helper()
	for _, n := range names {
		if !strings.HasPrefix(n, "FLOWG_") {
			continue
		}
		if flag := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(n, "FLOWG_")), "_", "-"); !flags[flag] {
			t.Errorf("%s: %s names no flag (--%s)", file, n, flag)
		}
	}
}

var envNameRE = regexp.MustCompile(`\bFLOWG_[A-Z0-9_]+`)

// defaultPorts are the ports the manifests may publish.
var defaultPorts = map[string]bool{"5080": true, "9113": true, "5514": true, "5443": true, "6514": true}

func checkPort(t *testing.T, file, port string) {
	t.Helper()
	if p, _, _ := strings.Cut(port, "/"); !defaultPorts[p] {
		t.Errorf("%s: port %s is not one of the defaults 5080, 9113, 5514, 5443, 6514", file, port)
	}
}

// dockerfile is the Dockerfile read line by line: instructions with their
// continuation lines joined.
type dockerInstr struct{ op, args string }

func readDockerfile(t testing.TB, path string) []dockerInstr {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstr
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		cur.WriteString(line)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{strings.ToUpper(op), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// dockerEnv is the image's final-stage ENV.
func dockerEnv(t testing.TB) map[string]string {
	env := map[string]string{}
	for _, in := range readDockerfile(t, filepath.Join(deployDir, "docker/Dockerfile")) {
		if in.op == "FROM" {
			clear(env)
		}
		if in.op == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	return env
}

func TestDeploy_Dockerfile(t *testing.T) {
	flags := helpFlags(t)
	const file = "docker/Dockerfile"
	instrs := readDockerfile(t, filepath.Join(deployDir, file))
	var stages, user, health, entry string
	var exposed, envNames []string
	for _, in := range instrs {
		switch in.op {
		case "FROM":
			stages, user, exposed, envNames = in.args, "", nil, nil // only the final stage counts
		case "USER":
			user = in.args
		case "HEALTHCHECK":
			health = in.args
		case "ENTRYPOINT":
			entry = in.args
		case "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, _, _ := strings.Cut(kv, "=")
				envNames = append(envNames, k)
			}
		}
	}
	if !strings.Contains(stages, "distroless/static") {
		t.Errorf("final stage %q: want a minimal static base", stages)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q: want a non-root user", user)
	}
	_, cmd, _ := strings.Cut(health, "CMD ")
	var probe []string
	if err := json.Unmarshal([]byte(cmd), &probe); err != nil || len(probe) < 2 {
		t.Fatalf("HEALTHCHECK %q: want CMD [binary, flags...]: %v", health, err)
	}
	checkArgs(t, file, probe[1:], flags)
	if !slices.Contains(probe, "--health-probe") {
		t.Errorf("HEALTHCHECK %q does not run --health-probe", health)
	}
	var ep []string
	if err := json.Unmarshal([]byte(entry), &ep); err != nil || len(ep) != 1 || ep[0] != probe[0] {
		t.Errorf("ENTRYPOINT %q: want the same binary as the health check, exec form", entry)
	}
	slices.Sort(exposed)
	if want := []string{"5080/tcp", "5514/tcp", "5514/udp", "9113/tcp"}; !slices.Equal(exposed, want) {
		t.Errorf("EXPOSE %v, want %v", exposed, want)
	}
	checkEnv(t, file, envNames, flags)
	env := dockerEnv(t)
	for k, want := range map[string]string{"FLOWG_HTTP_BIND": ":5080", "FLOWG_MGMT_BIND": ":9113", "FLOWG_SYSLOG_BIND": ":5514"} {
		if env[k] != want {
			t.Errorf("ENV %s=%q, want %q", k, env[k], want)
		}
	}

	// The build stage's command, run here: it must give a static binary
	// (no ELF interpreter), since the final stage has no libc.
	var build string
	for _, in := range instrs {
		if in.op == "RUN" && strings.Contains(in.args, "go build") {
			build = in.args
		}
	}
	if build == "" {
		t.Fatal("no RUN go build in the Dockerfile")
	}
	out := t.TempDir()
	build, _, _ = strings.Cut(strings.ReplaceAll(build, "/out/", out+"/"), "&&")
	build = strings.ReplaceAll(build, "${VERSION}", "test")
	bc := exec.Command("sh", "-c", build)
	bc.Dir = "../.."
	if b, err := bc.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, b)
	}
	bin, err := elf.Open(filepath.Join(out, "flowg-server"))
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	for _, p := range bin.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the image's binary is dynamically linked")
		}
	}
	if v, _ := exec.Command(filepath.Join(out, "flowg-server"), "--version").Output(); !strings.Contains(string(v), "test") {
		t.Errorf("--version of the image's binary: %q", v)
	}

	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil || !strings.Contains(string(ignore), ".git") {
		t.Errorf(".dockerignore missing or does not leave out .git: %v", err)
	}
}

// composeFile is what the tests read of compose.yaml.
type composeFile struct {
	Services map[string]struct {
		Image       string
		Command     []string
		Environment map[string]string
		Ports       []string
		Volumes     []string
		Healthcheck map[string]any
	}
	Volumes map[string]any
}

func readCompose(t testing.TB) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "compose/compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return c
}

// flowgServices are the compose services running flowg-server, sorted.
func (c composeFile) flowgServices() []string {
	var names []string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "flowg-server") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

func TestDeploy_Compose(t *testing.T) {
	flags := helpFlags(t)
	const file = "compose/compose.yaml"
	c := readCompose(t)
	if _, ok := c.Services["consul"]; !ok {
		t.Error("no consul service")
	}
	nodes := c.flowgServices()
	if len(nodes) != 3 {
		t.Fatalf("%d flowg-server services, want 3", len(nodes))
	}
	for _, name := range nodes {
		s := c.Services[name]
		checkArgs(t, file, s.Command, flags)
		var env []string
		for k, v := range s.Environment {
			env = append(env, k)
			if k == "FLOWG_CLUSTER_COOKIE" && !strings.HasPrefix(v, "${FLOWG_CLUSTER_COOKIE") {
				t.Errorf("%s: the cookie is written in the file, not taken from the environment", name)
			}
		}
		checkEnv(t, file, env, flags)
		if s.Environment["FLOWG_CLUSTER_CONSUL_URL"] == "" {
			t.Errorf("%s: no Consul discovery", name)
		}
		for _, p := range s.Ports {
			_, container, _ := strings.Cut(p, ":")
			checkPort(t, file, container)
		}
		if len(s.Volumes) != 1 || !strings.HasSuffix(s.Volumes[0], ":/data") {
			t.Errorf("%s: volumes %v, want one named volume on /data", name, s.Volumes)
		} else if v, _, _ := strings.Cut(s.Volumes[0], ":"); !slices.Contains(slices.Collect(mapsKeys(c.Volumes)), v) {
			t.Errorf("%s: volume %s is not a named (persistent) volume", name, v)
		}
	}
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// hclBlock finds nested blocks by type path, e.g. "job", "group", "task".
func hclBlocks(body *hclsyntax.Body, path ...string) []*hclsyntax.Block {
	if len(path) == 0 {
		return nil
	}
	var out []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type != path[0] {
			continue
		}
		if len(path) == 1 {
			out = append(out, b)
		} else {
			out = append(out, hclBlocks(b.Body, path[1:]...)...)
		}
	}
	return out
}

// hclStrings is the literal text of a list of strings, with Nomad's runtime
// interpolations (${NOMAD_...}) kept as written.
func hclStrings(src []byte, expr hclsyntax.Expression) []string {
	tuple, ok := expr.(*hclsyntax.TupleConsExpr)
	if !ok {
		return nil
	}
	var out []string
	for _, e := range tuple.Exprs {
		r := e.Range()
		out = append(out, strings.Trim(string(src[r.Start.Byte:r.End.Byte]), `"`))
	}
	return out
}

// hclText is an attribute's source text.
func hclText(src []byte, a *hclsyntax.Attribute) string {
	r := a.Expr.Range()
	return strings.Trim(string(src[r.Start.Byte:r.End.Byte]), `"`)
}

func parseHCL(t testing.TB, file string) ([]byte, *hclsyntax.Body) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(deployDir, file))
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, file)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", file, diags.Error())
	}
	return src, f.Body.(*hclsyntax.Body)
}

// nomadJob is what the tests use of the Nomad job: the task's arguments and
// environment, the cookie template, and the registered service.
type nomadJob struct {
	count                    string
	args                     []string
	env                      map[string]string
	template                 string
	service, servicePort     string
	checkPath, checkInterval string
	checkProtocol            string
	ports                    map[string]string // label → to
	native                   map[string]string // Connect native service → its port's "to"
}

func readNomad(t testing.TB) nomadJob {
	t.Helper()
	src, body := parseHCL(t, "nomad/flowg.nomad.hcl")
	j := nomadJob{env: map[string]string{}, ports: map[string]string{}, native: map[string]string{}}
	groups := hclBlocks(body, "job", "group")
	if len(groups) != 1 {
		t.Fatalf("%d groups, want 1", len(groups))
	}
	g := groups[0]
	if a := g.Body.Attributes["count"]; a != nil {
		j.count = hclText(src, a)
	}
	for _, p := range hclBlocks(g.Body, "network", "port") {
		if a := p.Body.Attributes["to"]; a != nil && len(p.Labels) == 1 {
			j.ports[p.Labels[0]] = hclText(src, a)
		}
	}
	for _, s := range hclBlocks(g.Body, "service") {
		name, port := hclText(src, s.Body.Attributes["name"]), hclText(src, s.Body.Attributes["port"])
		if cs := hclBlocks(s.Body, "connect"); len(cs) > 0 {
			if a := cs[0].Body.Attributes["native"]; a != nil && hclText(src, a) == "true" {
				j.native[name] = j.ports[port]
			}
			continue
		}
		j.service, j.servicePort = name, port
		for _, c := range hclBlocks(s.Body, "check") {
			j.checkPath, j.checkInterval = hclText(src, c.Body.Attributes["path"]), hclText(src, c.Body.Attributes["interval"])
			if a := c.Body.Attributes["protocol"]; a != nil {
				j.checkProtocol = hclText(src, a)
			}
		}
	}
	for _, task := range hclBlocks(g.Body, "task") {
		for _, c := range hclBlocks(task.Body, "config") {
			if a := c.Body.Attributes["args"]; a != nil {
				j.args = hclStrings(src, a.Expr)
			}
		}
		for _, e := range hclBlocks(task.Body, "env") {
			for name, a := range e.Body.Attributes {
				j.env[name] = hclText(src, a)
			}
		}
		for _, tp := range hclBlocks(task.Body, "template") {
			if a := tp.Body.Attributes["data"]; a != nil {
				r := a.Expr.Range()
				j.template = string(src[r.Start.Byte:r.End.Byte])
			}
		}
	}
	return j
}

func TestDeploy_Nomad(t *testing.T) {
	flags := helpFlags(t)
	const file = "nomad/flowg.nomad.hcl"
	j := readNomad(t)
	if j.count != "3" {
		t.Errorf("count %q, want 3", j.count)
	}
	checkArgs(t, file, j.args, flags)
	if !slices.Contains(j.args, "--cluster-dns-name") || !slices.Contains(j.args, "flowg.service.consul") {
		t.Errorf("args %v: want discovery through Consul DNS (flowg.service.consul)", j.args)
	}
	var env []string
	for k := range j.env {
		env = append(env, k)
	}
	checkEnv(t, file, env, flags)
	checkEnv(t, file, envNameRE.FindAllString(j.template, -1), flags)
	if !strings.Contains(j.template, "FLOWG_CLUSTER_COOKIE=") || !strings.Contains(j.template, "nomadVar") {
		t.Errorf("the cookie does not come from a Nomad variable: %q", j.template)
	}
	if j.service != "flowg" || j.ports[j.servicePort] != "9113" || j.checkPath != "/health" {
		t.Errorf("service %q on port %q (to %q), check %q: want flowg on the management port checked on /health",
			j.service, j.servicePort, j.ports[j.servicePort], j.checkPath)
	}
	for label, to := range j.ports {
		checkPort(t, file+" port "+label, to)
	}
	// The node is Connect native: Nomad registers its mesh ports so, and the
	// node serves them with --consul-connect.
	if j.native["flowg-api"] != "5443" || j.native["flowg-syslog"] != "6514" || !slices.Contains(j.args, "--consul-connect") {
		t.Errorf("Connect native services %v, args %v: want flowg-api on 5443 and flowg-syslog on 6514 with --consul-connect", j.native, j.args)
	}
	if j.checkProtocol != "https" {
		t.Errorf("the management check's protocol is %q: with --consul-connect the port speaks TLS", j.checkProtocol)
	}
}

// k8sDocs decodes every document of the Kubernetes manifest.
func k8sDocs(t testing.TB) map[string]map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join(deployDir, "kubernetes/flowg.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs := map[string]map[string]any{}
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("kubernetes/flowg.yaml: %v", err)
		}
		if d == nil {
			continue
		}
		md, _ := d["metadata"].(map[string]any)
		docs[d["kind"].(string)+"/"+md["name"].(string)] = d
	}
	return docs
}

// at walks a decoded YAML document: keys for maps, ints for lists.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestDeploy_Kubernetes(t *testing.T) {
	flags := helpFlags(t)
	const file = "kubernetes/flowg.yaml"
	docs := k8sDocs(t)
	for _, want := range []string{"Service/flowg", "Service/flowg-api", "StatefulSet/flowg", "PodDisruptionBudget/flowg"} {
		if docs[want] == nil {
			t.Fatalf("no %s", want)
		}
	}
	headless := docs["Service/flowg"]
	if at(headless, "spec", "clusterIP") != "None" || at(headless, "spec", "publishNotReadyAddresses") != true ||
		at(headless, "spec", "ports", 0, "name") != "mgmt" || at(headless, "spec", "ports", 0, "port") != 9113 {
		t.Errorf("headless Service: %v", headless["spec"])
	}
	sts := docs["StatefulSet/flowg"]
	if at(sts, "spec", "serviceName") != "flowg" || at(sts, "spec", "replicas") != 3 {
		t.Errorf("StatefulSet: serviceName %v, replicas %v", at(sts, "spec", "serviceName"), at(sts, "spec", "replicas"))
	}
	c := at(sts, "spec", "template", "spec", "containers", 0)
	var args []string
	for _, a := range at(c, "args").([]any) {
		args = append(args, a.(string))
	}
	checkArgs(t, file, args, flags)
	if !slices.ContainsFunc(args, func(a string) bool {
		return strings.HasPrefix(a, "--cluster-dns-name=_mgmt._tcp.flowg.") && strings.HasSuffix(a, ".svc.cluster.local")
	}) {
		t.Errorf("args %v: want --cluster-dns-name on the headless Service's SRV name", args)
	}
	var env []string
	cookieFromSecret := false
	for _, e := range at(c, "env").([]any) {
		env = append(env, at(e, "name").(string))
		if at(e, "name") == "FLOWG_CLUSTER_COOKIE" && at(e, "valueFrom", "secretKeyRef", "name") != nil {
			cookieFromSecret = true
		}
	}
	checkEnv(t, file, env, flags)
	if !cookieFromSecret {
		t.Error("FLOWG_CLUSTER_COOKIE is not taken from a Secret")
	}
	named := map[string]int{}
	for _, p := range at(c, "ports").([]any) {
		port := at(p, "containerPort").(int)
		checkPort(t, file, strconv.Itoa(port))
		named[at(p, "name").(string)] = port
	}
	if named["mgmt"] != 9113 || named["http"] != 5080 || named["syslog"] != 5514 {
		t.Errorf("container ports %v", named)
	}
	for probe, path := range map[string]string{"livenessProbe": "/health", "readinessProbe": "/ready"} {
		if at(c, probe, "httpGet", "path") != path || at(c, probe, "httpGet", "port") != "mgmt" {
			t.Errorf("%s: %v, want GET %s on mgmt", probe, at(c, probe), path)
		}
	}
	if at(sts, "spec", "volumeClaimTemplates", 0, "metadata", "name") != "data" {
		t.Error("no volume claim template named data")
	}
	if at(docs["PodDisruptionBudget/flowg"], "spec", "maxUnavailable") != 1 {
		t.Error("PodDisruptionBudget: want maxUnavailable 1")
	}
}

func TestDeploy_Consul(t *testing.T) {
	src, body := parseHCL(t, "consul/flowg.service.hcl")
	svcs := hclBlocks(body, "service")
	if len(svcs) != 1 {
		t.Fatalf("%d service blocks", len(svcs))
	}
	s := svcs[0].Body
	if hclText(src, s.Attributes["name"]) != "flowg" || hclText(src, s.Attributes["port"]) != "9113" {
		t.Errorf("service %s on port %s, want flowg on 9113", hclText(src, s.Attributes["name"]), hclText(src, s.Attributes["port"]))
	}
	checks := hclBlocks(s, "check")
	if len(checks) != 1 || !strings.HasSuffix(hclText(src, checks[0].Body.Attributes["http"]), ":9113/health") {
		t.Error("want one HTTP check on the management /health")
	}
	meta := hclBlocks(s, "meta")
	if len(meta) != 1 || meta[0].Body.Attributes["node-id"] == nil || meta[0].Body.Attributes["endpoint"] == nil {
		t.Error("want meta node-id and endpoint")
	}
	parseHCL(t, "consul/agent.hcl")

	// Consul's own validator reads both files as an agent would.
	dir := t.TempDir()
	for _, f := range []string{"flowg.service.hcl", "agent.hcl"} {
		b, _ := os.ReadFile(filepath.Join(deployDir, "consul", f))
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "base.hcl"), []byte(`data_dir = "`+t.TempDir()+`"`+"\n"), 0o644)
	if out, err := exec.Command(consultest.Binary(t), "validate", dir).CombinedOutput(); err != nil {
		t.Errorf("consul validate: %v\n%s", err, out)
	}
}

func TestDeploy_Systemd(t *testing.T) {
	flags := helpFlags(t)
	const file = "systemd/flowg-server.service"
	unit, err := os.ReadFile(filepath.Join(deployDir, file))
	if err != nil {
		t.Fatal(err)
	}
	var args, env []string
	for _, line := range strings.Split(string(unit), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "ExecStart":
			args = strings.Fields(v)[1:]
		case "Environment":
			name, _, _ := strings.Cut(v, "=")
			env = append(env, name)
		}
	}
	checkArgs(t, file, args, flags)
	checkEnv(t, file, env, flags)
	for _, a := range args {
		if strings.HasPrefix(a, ":") {
			checkPort(t, file, a[1:])
		}
	}
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "EnvironmentFile="} {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	envFile, err := os.ReadFile(filepath.Join(deployDir, "systemd/flowg-server.env"))
	if err != nil {
		t.Fatal(err)
	}
	checkEnv(t, "systemd/flowg-server.env", envNameRE.FindAllString(string(envFile), -1), flags)

	// systemd-analyze verify, where systemd is present, with ExecStart
	// pointing at the binary built for the tests.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not found: the unit is checked by the reader above only")
		return
	}
	dir := t.TempDir()
	copyUnit := filepath.Join(dir, "flowg-server.service")
	os.WriteFile(copyUnit, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/flowg-server", serverBin)), 0o644)
	if out, err := exec.Command(analyze, "verify", copyUnit).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=true", copyUnit).CombinedOutput()
	if err == nil {
		if m := regexp.MustCompile(`Overall exposure level for [^:]+: ([0-9.]+)`).FindSubmatch(out); m != nil {
			t.Logf("systemd-analyze security: exposure %s", m[1])
		}
	}
}
