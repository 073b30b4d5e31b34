package serfnet

import (
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// peerFresh is how long a peer's last answer counts: gossip reaches every
// peer every second or so, so a refusal older than this is over.
const peerFresh = 30 * time.Second

// peerHealth follows how the peers answer this node's signed requests, so
// that a node they refuse says why (a clock offset, another cookie) instead
// of a bare 401, and knows when it is cut off from all of them.
type peerHealth struct {
	log *slog.Logger
	m   *metrics
	now func() time.Time

	accepted prometheus.Counter // the outcome of nearly every answer

	mu    sync.Mutex
	peers map[string]peerAnswer // by node ID, or address when the ID is unknown
}

// peerAnswer is a peer's last answer: accepted (cause "") or refused.
type peerAnswer struct {
	at            time.Time
	cause, detail string
	offset        time.Duration // the peer's clock minus this node's, when it said
}

func newPeerHealth(log *slog.Logger, m *metrics, now func() time.Time) *peerHealth {
	return &peerHealth{log: log, m: m, now: now, peers: map[string]peerAnswer{}, accepted: m.refusals.WithLabelValues("accepted")}
}

// answered notes a peer's answer to a signed request. A refusal for a new
// cause is logged once, in the words a person would search for; so is the
// end of it.
func (h *peerHealth) answered(peer string, resp *http.Response) {
	now := h.now()
	a := peerAnswer{at: now}
	switch code := resp.Header.Get(hdrReject); {
	case resp.StatusCode < 300 || resp.StatusCode == http.StatusSwitchingProtocols:
	case code == rejectClock:
		a.cause = "clock_offset"
		if ms, err := strconv.ParseInt(resp.Header.Get(hdrTime), 10, 64); err == nil {
			a.offset = time.UnixMilli(ms).Sub(now)
		}
		a.detail = fmt.Sprintf("clock offset: %s's clock is %+.1f s from this node's, beyond the signature window; fix the clocks (NTP)", peer, a.offset.Seconds())
	case code == rejectSignature || code == rejectUnsigned:
		a.cause = "cookie_mismatch"
		a.detail = fmt.Sprintf("cookie mismatch: %s refuses this node's signature; --cluster-cookie (or --cluster-name) differs between the two", peer)
	case code == rejectWrongNode:
		a.cause = "wrong_node"
		a.detail = fmt.Sprintf("%s answers at an address this node knows under another node ID", peer)
	case code == "not_a_member":
		a.cause = "not_a_member"
		a.detail = fmt.Sprintf("%s refuses this node as not a member of its cluster", peer)
	default:
		return // busy, shutting down, a replayed retry: says nothing of this node
	}
	h.mu.Lock()
	before, known := h.peers[peer]
	if a.cause == "" && known && before.cause == "" && now.Sub(before.at) < time.Second {
		// Every gossip packet answers: an accepted one a moment after
		// another changes nothing worth a write.
		h.mu.Unlock()
		h.accepted.Inc()
		return
	}
	h.peers[peer] = a
	h.mu.Unlock()
	if a.cause == "" {
		h.accepted.Inc()
	} else {
		h.m.refusals.WithLabelValues(a.cause).Inc()
	}
	switch {
	case a.cause != "" && (!known || before.cause != a.cause || now.Sub(before.at) > peerFresh):
		h.log.Warn("a peer refuses this node's requests: "+a.detail, "peer", peer, "cause", a.cause)
	case a.cause == "" && known && before.cause != "":
		h.log.Info("a peer accepts this node's requests again", "peer", peer, "was", before.cause)
	}
}

// problems lists the peers that refused this node lately, with why, and
// says whether every peer heard from lately refused it (this node is cut
// off by its own configuration: clock, cookie).
func (h *peerHealth) problems() (out []string, isolated bool) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	heard, refused := 0, 0
	for p, a := range h.peers {
		if now.Sub(a.at) > peerFresh {
			delete(h.peers, p)
			continue
		}
		heard++
		if a.cause != "" {
			refused++
			out = append(out, a.detail)
		}
	}
	sort.Strings(out)
	return out, heard > 0 && refused == heard
}

// clockOffset is the largest clock offset a refusing peer reported lately.
func (h *peerHealth) clockOffset() time.Duration {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	var worst time.Duration
	for _, a := range h.peers {
		if now.Sub(a.at) <= peerFresh && a.offset.Abs() > worst.Abs() {
			worst = a.offset
		}
	}
	return worst
}
