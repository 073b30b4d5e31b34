package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/flowg-server/flowg-server/node"
)

// Run parses the flags and environment, then runs one node until ctx ends
// (see node.Node.Run for the start and shutdown order).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if c.showVersion {
		fmt.Fprintln(stdout, "flowg-server", versionString())
		return nil
	}
	if c.healthProbe {
		return healthProbe(c)
	}
	if err := c.validate(); err != nil {
		return err
	}
	level, _ := parseLevel(c.logLevel)
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if c.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	c.node.Version, c.node.Logger = versionString(), slog.New(handler)
	return node.New(c.node).Run(ctx)
}

// healthProbe asks the management /health of the node that runs with the
// same flags, on this host.
func healthProbe(c *config) error {
	host, port, err := net.SplitHostPort(c.node.MgmtBind)
	if err != nil {
		return fmt.Errorf("--mgmt-bind %q: %w", c.node.MgmtBind, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme, transport := "http", &http.Transport{}
	if c.node.MgmtTLSFiles.On || c.node.Connect.Enabled {
		// The probe sends no secret and only reads a status code from this
		// host, so the certificate (issued for the advertised name, not for
		// 127.0.0.1) is not checked.
		scheme, transport.TLSClientConfig = "https", &tls.Config{InsecureSkipVerify: true}
	}
	client := &http.Client{Timeout: 3 * time.Second, Transport: transport}
	resp, err := client.Get(scheme + "://" + net.JoinHostPort(host, port) + "/health")
	if err != nil {
		return fmt.Errorf("health probe: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health probe: %s", resp.Status)
	}
	return nil
}
