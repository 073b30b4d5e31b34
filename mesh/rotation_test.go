package mesh

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/consultest"
	"github.com/flowg-server/flowg-server/internal/testwait"
)

// TestMesh_CARotationWithoutAFailedRequest rotates the mesh's CA (a new
// private key, so a new root, cross-signed by the old one) while a client
// sends requests on new connections without pause: no request fails, and
// the server presents a leaf of the new root without a restart.
func TestMesh_CARotationWithoutAFailedRequest(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client(t)
	server := start(t, client, nil, "flowg-api")
	app := start(t, client, nil, "app")
	url := serve(t, server)
	cfg := app.ClientTLS("app", func(id flowg.MeshIdentity) error { return nil })

	served := func() []byte { // the issuer of the leaf the server presents now
		conn, err := tls.Dial("tcp", url[len("https://"):], cfg)
		if err != nil {
			return nil
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].AuthorityKeyId
	}
	before := served()
	if before == nil {
		t.Fatal("no handshake before the rotation")
	}

	var sent, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			sent.Add(1)
			if _, err := get(url, cfg); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}
	})

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(key)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
	if _, err := client.Connect().CASetConfig(&api.CAConfig{Provider: "consul", Config: map[string]any{
		"PrivateKey": pemKey, "LeafCertTTL": "72h", "IntermediateCertTTL": "8760h"}}, nil); err != nil {
		t.Fatal(err)
	}
	took := testwait.Eventually(t, 60*time.Second, "the server presenting a leaf of the new root", func() bool {
		now := served()
		return now != nil && !bytes.Equal(now, before)
	})
	time.Sleep(time.Second) // requests on the new leaf too
	close(stop)
	wg.Wait()
	t.Logf("CA rotated: the server presented the new root's leaf %s after set-config; %d requests during the rotation, %d failed",
		took.Round(time.Millisecond), sent.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during the rotation; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
	if testutilCount(server) < 1 {
		t.Error("the rotation is not counted")
	}
}

func testutilCount(m *Mesh) float64 {
	var n float64
	for _, kind := range []string{"roots", "leaf"} {
		n += counterValue(m.m.rotations.WithLabelValues(kind))
	}
	return n
}
