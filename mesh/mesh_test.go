package mesh

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/consultest"
	"github.com/flowg-server/flowg-server/internal/testcert"
	"github.com/flowg-server/flowg-server/internal/testwait"
)

func start(t *testing.T, client *api.Client, reg prometheus.Registerer, services ...string) *Mesh {
	t.Helper()
	m, err := New(Config{Client: client, Services: services, AuthorizeTTL: 500 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// serve runs an HTTPS server as flowg-api that answers with the caller's
// mesh identity.
func serve(t *testing.T, m *Mesh) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.ServerTLS("flowg-api", nil))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := Identity(r.TLS)
		fmt.Fprintf(w, "%s/%s/%s", id.Service, id.Namespace, id.Datacenter)
	}), ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelDebug)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

func get(url string, cfg *tls.Config) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestMesh_IdentityIntentionsAndStrangers runs a Connect native server and
// client against a real Consul agent (dev mode: Connect and its built-in CA
// on): the client's service identity reaches the handler; an intention
// that denies it refuses the next connection within the decision's
// lifetime and allow lets it in again; a certificate of another CA, none
// at all, and a server that is not flowg-api are refused.
func TestMesh_IdentityIntentionsAndStrangers(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client(t)
	reg := prometheus.NewRegistry()
	server := start(t, client, reg, "flowg-api")
	app := start(t, client, nil, "app")
	url := serve(t, server)
	isAPI := func(id flowg.MeshIdentity) error {
		if id.Service != "flowg-api" {
			return fmt.Errorf("%s is not flowg-api", id.Service)
		}
		return nil
	}

	body, err := get(url, app.ClientTLS("app", isAPI))
	if err != nil || body != "app/default/dc1" {
		t.Fatalf("app's request: %q, %v", body, err)
	}
	// The client checks the server's identity too.
	if _, err := get(url, app.ClientTLS("app", func(flowg.MeshIdentity) error { return fmt.Errorf("want db") })); err == nil {
		t.Fatal("a client expecting another service accepted flowg-api")
	}

	for _, action := range []api.IntentionAction{api.IntentionActionDeny, api.IntentionActionAllow} {
		if _, err := client.Connect().IntentionUpsert(&api.Intention{SourceName: "app", DestinationName: "flowg-api", Action: action}, nil); err != nil {
			t.Fatal(err)
		}
		took := testwait.Eventually(t, 10*time.Second, "intention "+string(action)+" applied", func() bool {
			_, err := get(url, app.ClientTLS("app", isAPI))
			return (err == nil) == (action == api.IntentionActionAllow)
		})
		t.Logf("intention %s applied to new connections %s after it was written", action, took.Round(time.Millisecond))
	}
	if got := testutil.ToFloat64(server.m.denied.WithLabelValues("flowg-api", "intention")); got < 1 {
		t.Errorf("denials by intention counted %v", got)
	}

	stranger := testcert.New(t, "app")
	if _, err := get(url, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{stranger.TLS}}); err == nil {
		t.Fatal("a certificate of another CA was admitted")
	}
	if _, err := get(url, &tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Fatal("a client without a certificate was admitted")
	}
	for reason, want := range map[string]float64{"untrusted": 1, "no_certificate": 1} {
		if got := testutil.ToFloat64(server.m.denied.WithLabelValues("flowg-api", reason)); got != want {
			t.Errorf("denied{reason=%s} = %v, want %v", reason, got, want)
		}
	}
}

// TestMesh_StartFailsWithoutConsul: no agent, one error that says what is
// missing.
func TestMesh_StartFailsWithoutConsul(t *testing.T) {
	cfg := api.DefaultConfig()
	cfg.Address = "127.0.0.1:1"
	client, _ := api.NewClient(cfg)
	m, err := New(Config{Client: client, Services: []string{"flowg-api"}})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Consul Connect CA roots") {
		t.Fatalf("Start = %v", err)
	}
}

func TestParseSPIFFE(t *testing.T) {
	for uri, want := range map[string]string{
		"spiffe://abc.consul/ns/default/dc/dc1/svc/web":          "web/default/dc1/default",
		"spiffe://abc.consul/ap/part1/ns/team/dc/eu-1/svc/api-2": "api-2/team/eu-1/part1",
		"spiffe://abc.consul/ns/default/dc/dc1/svc/":             "",
		"spiffe://abc.consul/agent/client/dc/dc1/id/x":           "",
		"https://abc.consul/ns/default/dc/dc1/svc/web":           "",
		"spiffe:///ns/default/dc/dc1/svc/web":                    "",
	} {
		u, _ := parseURL(uri)
		id, _, err := parseSPIFFE(u)
		got := ""
		if err == nil {
			got = id.Service + "/" + id.Namespace + "/" + id.Datacenter + "/" + id.Partition
		}
		if got != want {
			t.Errorf("parseSPIFFE(%s) = %q (%v), want %q", uri, got, err, want)
		}
	}
}

func counterValue(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }

// TestMesh_ConsulOutageServesOn: with the agent gone, the server keeps its
// certificates and admits a caller it has a decision for (counted as
// stale), and refuses one it never saw.
func TestMesh_ConsulOutageServesOn(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client(t)
	server := start(t, client, nil, "flowg-api")
	app := start(t, client, nil, "app")
	db := start(t, client, nil, "db")
	url := serve(t, server)
	if _, err := get(url, app.ClientTLS("app", nil)); err != nil {
		t.Fatal(err)
	}
	agent.Stop()
	time.Sleep(600 * time.Millisecond) // past the decision's 500 ms lifetime
	if body, err := get(url, app.ClientTLS("app", nil)); err != nil || body != "app/default/dc1" {
		t.Fatalf("app during the outage: %q %v", body, err)
	}
	if got := testutil.ToFloat64(server.m.staleDecisions); got < 1 {
		t.Errorf("stale decisions counted %v", got)
	}
	if _, err := get(url, db.ClientTLS("db", nil)); err == nil {
		t.Fatal("a caller never authorised was admitted while Consul was down")
	}
	if got := testutil.ToFloat64(server.m.denied.WithLabelValues("flowg-api", "authorize_error")); got != 1 {
		t.Errorf("authorize errors counted %v", got)
	}
}
