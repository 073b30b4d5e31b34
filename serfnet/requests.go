package serfnet

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/serf/serf"

	flowg "github.com/flowg-server/flowg-server"
)

// Other cluster traffic than gossip (replication) rides the same
// management port and the same request signing.

// Authenticate wraps h so that it serves only requests signed with the
// cluster's key when there is a cookie (unsigned, replayed, tampered or
// misaddressed requests are answered 401 and counted as gossip's are,
// before their body is read). Without a cookie there is no key: it then
// serves only requests from the address of a member (403 otherwise),
// which keeps out hosts that have not even joined. The body is then read,
// up to maxBody bytes (413 beyond), and handed to h in full.
func (c *Cluster) Authenticate(h http.Handler, maxBody int64) http.Handler {
	t := c.transport
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := t.authenticated(w, r, maxBody, c.fromMember)
		if !ok {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	})
}

// fromMember reports whether addr's IP is an alive member's.
func (c *Cluster) fromMember(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil || c.serf == nil {
		return false
	}
	for _, m := range c.serf.Members() {
		if m.Status == serf.StatusAlive && m.Addr.Equal(ip) {
			return true
		}
	}
	return false
}

// Request sends a signed request to path (with its query) on a node's
// management endpoint (its URL, as in the endpoint tag), addressed to that
// node's ID so that no other node accepts it; header is added as it is.
// The response may be held open by the other node (a long poll): ctx
// bounds it. A refusal is noted in the node's view of its peers (see
// Problems).
func (c *Cluster) Request(ctx context.Context, to flowg.Peer, method, path string, header http.Header, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, to.Endpoint+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	maps.Copy(req.Header, header)
	req.Header.Set("Content-Type", "application/octet-stream")
	sign(req, c.transport.signing, c.transport.advertise.String(), to.NodeID, body, c.transport.now())
	resp, err := c.requestClient().Do(req)
	if err == nil {
		c.transport.peers.answered(to.NodeID, resp)
	}
	return resp, err
}

func (c *Cluster) requestClient() *http.Client {
	c.clientOnce.Do(func() {
		dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		var protocols *http.Protocols
		if c.cfg.Scheme == "http" {
			// As for gossip: HTTP/2 without TLS, one connection per peer
			// carrying every concurrent request.
			protocols = new(http.Protocols)
			protocols.SetUnencryptedHTTP2(true)
		}
		c.client = &http.Client{Transport: &http.Transport{
			DialContext: dialer.DialContext, TLSClientConfig: c.cfg.TLS,
			MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second,
			Protocols: protocols,
		}}
	})
	return c.client
}
