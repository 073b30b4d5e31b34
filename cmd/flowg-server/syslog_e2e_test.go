package main

import (
	"crypto/tls"
	"fmt"
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

// TestE2E_SyslogWithLogger sends with util-linux logger: RFC 5424 and RFC
// 3164 over UDP, octet-counted RFC 5424 over TCP; and octet-counted RFC 5424
// over TLS from a Go client (logger has no TLS). Each message is then found
// with its parsed fields.
func TestE2E_SyslogWithLogger(t *testing.T) {
	if _, err := exec.LookPath("logger"); err != nil {
		t.Fatal("util-linux logger is required (apt-get install bsdutils)")
	}
	logger := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("logger", args...).CombinedOutput(); err != nil {
			t.Fatalf("logger %v: %v %s", args, err, out)
		}
	}
	dir := t.TempDir()
	certFile, keyFile, pool, _ := writeCert(t, dir, "syslog")
	for _, proto := range []string{"udp", "tcp", "tls"} {
		httpAddr, mgmtAddr, syslogAddr := freeAddr(t), freeAddr(t), freeAddr(t)
		args := []string{"--http-bind", httpAddr, "--mgmt-bind", mgmtAddr, "--syslog-bind", syslogAddr,
			"--auth-dir", dir + "/" + proto + "/auth", "--log-dir", dir + "/" + proto + "/logs", "--config-dir", dir + "/" + proto + "/config"}
		switch proto {
		case "tcp":
			args = append(args, "--syslog-protocol", "tcp")
		case "tls":
			args = append(args, "--syslog-protocol", "tcp", "--syslog-tls", "--syslog-tls-cert", certFile, "--syslog-tls-key", keyFile)
		}
		p := start(t, dir, nil, httpAddr, mgmtAddr, args...)
		tok := p.login("root", "root")
		host, port, _ := strings.Cut(syslogAddr, ":")
		switch proto {
		case "udp":
			logger("--server", host, "--port", port, "--udp", "--rfc5424", "--tag", "e2eapp", "--msgid", "M42",
				"--sd-id", "origin@1", "--sd-param", `team="ops"`, "-p", "local3.warning", "udp five four two four")
			logger("--server", host, "--port", port, "--udp", "--rfc3164", "--tag", "bsdapp", "-p", "auth.err", "udp three one six four")
			waitFor(t, p, tok, `message = "udp five four two four" and appname = "e2eapp" and msgid = "M42" and facility = "local3" and severity = "warning" and level = "warn"`, 1)
			waitFor(t, p, tok, `message = "udp three one six four" and appname = "bsdapp" and facility = "auth" and severity = "err" and hostname != ""`, 1)
		case "tcp":
			logger("--server", host, "--port", port, "--tcp", "--octet-count", "--rfc5424", "--tag", "tcpapp",
				"--sd-id", "origin@1", "--sd-param", `team="ops"`, "tcp octet counted")
			waitFor(t, p, tok, `message = "tcp octet counted" and appname = "tcpapp" and sd.origin@1.team = "ops"`, 1)
		case "tls":
			c, err := tls.Dial("tcp", syslogAddr, &tls.Config{RootCAs: pool})
			if err != nil {
				t.Fatal(err)
			}
			msg := `<165>1 2026-11-25T10:00:00.5Z tlshost tlsapp 77 ID9 [x@1 k="v"] over TLS`
			fmt.Fprintf(c, "%d %s", len(msg), msg)
			c.Close()
			waitFor(t, p, tok, `message = "over TLS" and hostname = "tlshost" and procid = "77" and sd.x@1.k = "v"`, 1)
		}
		if !strings.Contains(p.logText(), "syslog listening") {
			t.Fatal("no syslog start line in the log")
		}
	}
}
