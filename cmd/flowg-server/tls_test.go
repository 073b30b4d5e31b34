package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server/internal/testcert"
	"github.com/flowg-server/flowg-server/internal/testwait"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key.
func writeCert(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool, cert tls.Certificate) {
	t.Helper()
	c := testcert.New(t, name)
	certFile, keyFile = c.Files(t, dir, name)
	return certFile, keyFile, c.Pool, c.TLS
}

// TestRun_TLSAndMutualTLS serves the public API over TLS and the management
// API over mutual TLS: a client without a certificate is refused there.
func TestRun_TLSAndMutualTLS(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey, srvPool, _ := writeCert(t, dir, "server")
	clientCA, _, _, clientCert := writeCert(t, dir, "client")
	httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{
			"--auth-dir", dir + "/auth", "--log-dir", dir + "/logs", "--config-dir", dir + "/config",
			"--http-bind", httpAddr, "--mgmt-bind", mgmtAddr, "--syslog-bind", "127.0.0.1:0",
			"--http-tls", "--http-tls-cert", srvCert, "--http-tls-key", srvKey,
			"--mgmt-tls", "--mgmt-tls-cert", srvCert, "--mgmt-tls-key", srvKey, "--mgmt-tls-client-ca", clientCA,
		}, io.Discard, io.Discard)
	}()
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srvPool, Certificates: []tls.Certificate{clientCert}}}}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: srvPool}}}
	testwait.Eventually(t, 20*time.Second, "ready over mutual TLS", func() bool {
		resp, err := withCert.Get("https://" + mgmtAddr + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	if _, err := noCert.Get("https://" + mgmtAddr + "/health"); err == nil {
		t.Fatal("the management API answered a client without a certificate")
	}
	resp, err := noCert.Get("https://" + httpAddr + "/api/v1/openapi.json")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("public API over TLS: %v %v", err, resp)
	}
	resp.Body.Close()
	if resp, err := http.Get("http://" + httpAddr + "/api/v1/openapi.json"); err == nil && resp.StatusCode != 400 {
		t.Fatalf("the TLS listener answered plain HTTP with %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
