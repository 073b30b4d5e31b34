package mesh

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// TestVerify_RefusesByReason signs leaves with a CA of the test's own,
// installed as the mesh's roots, and checks each refusal's reason: a
// certificate of this CA and trust domain passes; another trust domain,
// no SPIFFE ID, two of them, another CA and no certificate do not.
func TestVerify_RefusesByReason(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(signer *x509.Certificate, key *ecdsa.PrivateKey, uris ...string) [][]byte {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		for _, u := range uris {
			p, _ := url.Parse(u)
			tmpl.URIs = append(tmpl.URIs, p)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &k.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		return [][]byte{der}
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherTmpl := *caTmpl
	otherTmpl.SerialNumber = big.NewInt(2)
	otherDER, _ := x509.CreateCertificate(rand.Reader, &otherTmpl, &otherTmpl, &otherKey.PublicKey, otherKey)
	other, _ := x509.ParseCertificate(otherDER)

	client, _ := api.NewClient(api.DefaultConfig())
	m, err := New(Config{Client: client, Services: []string{"flowg-api"}})
	if err != nil {
		t.Fatal(err)
	}
	m.roots, m.inter, m.trustDomain = x509.NewCertPool(), x509.NewCertPool(), "abc.consul"
	m.roots.AddCert(ca)

	const good = "spiffe://abc.consul/ns/default/dc/dc1/svc/app"
	for _, c := range []struct {
		name   string
		chain  [][]byte
		reason string
	}{
		{"good", leaf(ca, caKey, good), ""},
		{"another trust domain", leaf(ca, caKey, "spiffe://xyz.consul/ns/default/dc/dc1/svc/app"), "trust_domain"},
		{"no SPIFFE ID", leaf(ca, caKey), "not_spiffe"},
		{"two SPIFFE IDs", leaf(ca, caKey, good, "spiffe://abc.consul/ns/default/dc/dc1/svc/db"), "not_spiffe"},
		{"an agent's ID, not a service's", leaf(ca, caKey, "spiffe://abc.consul/agent/client/dc/dc1/id/x"), "not_spiffe"},
		{"another CA", leaf(other, otherKey, good), "untrusted"},
		{"no certificate", nil, "no_certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.verify(c.chain)
			var r *refusal
			switch {
			case c.reason == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.reason == "" && (got.id.Service != "app" || got.uri != good):
				t.Fatalf("caller %+v", got)
			case c.reason != "" && (!errors.As(err, &r) || r.reason != c.reason):
				t.Fatalf("err %v, want a refusal for %s", err, c.reason)
			}
		})
	}
}
