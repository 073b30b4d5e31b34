package main

import (
	"crypto/tls"
	"fmt"
	gosyslog "log/syslog"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/internal/testwait"
)

// waitFor queries the syslog stream until filter matches want records.
func waitFor(t *testing.T, p *proc, tok, filter string, want int) {
	t.Helper()
	testwait.Eventually(t, 15*time.Second, fmt.Sprintf("%d records match %s", want, filter), func() bool {
		code, b := p.request(tok, "GET", "/api/v1/streams/syslog/logs?"+url.Values{"filter": {filter}}.Encode(), "")
		return code == 200 && strings.Count(string(b), `"timestamp"`) == want
	})
}

// TestE2E_SyslogWithLogger starts a node with the default syslog settings
// (UDP and TCP on one port) and sends what real senders send: util-linux
// logger (RFC 5424 and 3164 over UDP, octet-counted RFC 5424 over TCP),
// Python's logging.handlers.SysLogHandler over UDP and TCP, and Go's
// log/syslog over UDP and TCP; each message is then found with its parsed
// fields. A second node serves syslog over TLS: a Go client's message is
// stored, a plaintext logger aimed at that port is counted and logged,
// and a sender outside the origin list is refused with a log line.
func TestE2E_SyslogWithLogger(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		t.Fatal("util-linux logger is required (apt-get install bsdutils)")
	}
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v %s", name, args, err, out)
		}
	}
	dir := t.TempDir()
	httpAddr, mgmtAddr, syslogAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	p := start(t, dir, nil, httpAddr, mgmtAddr, "--http-bind", httpAddr, "--mgmt-bind", mgmtAddr, "--syslog-bind", syslogAddr,
		"--auth-dir", dir+"/plain/auth", "--log-dir", dir+"/plain/logs", "--config-dir", dir+"/plain/config")
	tok := p.login("root", "root")
	host, port, _ := strings.Cut(syslogAddr, ":")
	run("logger", "--server", host, "--port", port, "--udp", "--rfc5424", "--tag", "e2eapp", "--msgid", "M42",
		"--sd-id", "origin@1", "--sd-param", `team="ops"`, "-p", "local3.warning", "udp five four two four")
	run("logger", "--server", host, "--port", port, "--udp", "--rfc3164", "--tag", "bsdapp", "-p", "auth.err", "udp three one six four")
	run("logger", "--server", host, "--port", port, "--tcp", "--octet-count", "--rfc5424", "--tag", "tcpapp",
		"--sd-id", "origin@1", "--sd-param", `team="ops"`, "tcp octet counted")
	python := `import logging, logging.handlers, socket, sys
for kind, st in (("udp", socket.SOCK_DGRAM), ("tcp", socket.SOCK_STREAM)):
    h = logging.handlers.SysLogHandler(address=(sys.argv[1], int(sys.argv[2])), socktype=st)
    h.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    log = logging.getLogger("py" + kind)
    log.addHandler(h)
    log.warning("python over " + kind)
    h.close()
`
	run("python3", "-c", python, host, port)
	for _, network := range []string{"udp", "tcp"} {
		w, err := gosyslog.Dial(network, syslogAddr, gosyslog.LOG_ERR|gosyslog.LOG_DAEMON, "go"+network)
		if err != nil {
			t.Fatal(err)
		}
		w.Err("go over " + network)
		w.Close()
	}
	waitFor(t, p, tok, `message = "udp five four two four" and appname = "e2eapp" and msgid = "M42" and facility = "local3" and severity = "warning" and level = "warn"`, 1)
	waitFor(t, p, tok, `message = "udp three one six four" and appname = "bsdapp" and facility = "auth" and severity = "err" and hostname != ""`, 1)
	waitFor(t, p, tok, `message = "tcp octet counted" and appname = "tcpapp" and sd.origin@1.team = "ops"`, 1)
	for _, kind := range []string{"udp", "tcp"} {
		waitFor(t, p, tok, `message = "python over `+kind+`" and appname = "py`+kind+`" and level = "warn" and parse_error = ""`, 1)
		waitFor(t, p, tok, `message = "go over `+kind+`" and appname = "go`+kind+`" and facility = "daemon" and level = "error" and hostname != ""`, 1)
	}
	if !strings.Contains(p.logText(), "protocol=udp+tcp") {
		t.Fatal("the default start does not listen on UDP and TCP")
	}

	certFile, keyFile, pool, _ := writeCert(t, dir, "syslog")
	httpAddr, mgmtAddr, syslogAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	p = start(t, dir, nil, httpAddr, mgmtAddr, "--http-bind", httpAddr, "--mgmt-bind", mgmtAddr, "--syslog-bind", syslogAddr,
		"--syslog-tls", "--syslog-tls-cert", certFile, "--syslog-tls-key", keyFile, "--syslog-allow-origin", "127.0.0.1",
		"--auth-dir", dir+"/tls/auth", "--log-dir", dir+"/tls/logs", "--config-dir", dir+"/tls/config")
	tok = p.login("root", "root")
	c, err := tls.Dial("tcp", syslogAddr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	msg := `<165>1 2026-11-25T10:00:00.5Z tlshost tlsapp 77 ID9 [x@1 k="v"] over TLS`
	fmt.Fprintf(c, "%d %s", len(msg), msg)
	c.Close()
	waitFor(t, p, tok, `message = "over TLS" and hostname = "tlshost" and procid = "77" and sd.x@1.k = "v"`, 1)
	host, port, _ = strings.Cut(syslogAddr, ":")
	run("logger", "--server", host, "--port", port, "--tcp", "--rfc5424", "plaintext to the TLS port")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	if c, err := d.Dial("tcp", syslogAddr); err == nil {
		c.Close()
	}
	testwait.Eventually(t, 10*time.Second, "the plaintext sender and the refused origin counted and logged", func() bool {
		m := scrape(t, p)
		return strings.Contains(m, `flowg_syslog_dropped_total{listener="syslog",reason="plaintext_on_tls"} 1`) &&
			strings.Contains(m, `flowg_syslog_dropped_total{listener="syslog",reason="origin"} 1`) &&
			strings.Contains(p.logText(), "plaintext to the TLS port") && strings.Contains(p.logText(), "not in --syslog-allow-origin")
	})
	if !strings.Contains(p.logText(), "protocol=tcp tls=true") {
		t.Error("UDP opened beside the TLS port")
	}
}
