package serfnet

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/hkdf"
)

// keys are what a cookie derives: the gossip encryption key and the request
// signing key. The cookie itself is not kept.
type keys struct {
	gossip, signing []byte
}

// deriveKeys derives 32-byte keys from cookie with HKDF-SHA256; the cluster
// name is the salt, so two clusters with one cookie still differ.
func deriveKeys(cookie, cluster string) keys {
	read := func(purpose string) []byte {
		k := make([]byte, 32)
		r := hkdf.New(sha256.New, []byte(cookie), []byte(cluster), []byte("flowg "+purpose))
		if _, err := io.ReadFull(r, k); err != nil {
			panic(err) // HKDF-SHA256 gives up to 8160 bytes; 32 cannot fail
		}
		return k
	}
	return keys{gossip: read("gossip encryption"), signing: read("request signing")}
}

// Headers of a signed request, and of the answer to a refused one.
const (
	hdrFrom      = "X-Flowg-From"
	hdrTo        = "X-Flowg-To"
	hdrTimestamp = "X-Flowg-Timestamp"
	hdrNonce     = "X-Flowg-Nonce"
	hdrDigest    = "X-Flowg-Content-Sha256"
	hdrSignature = "X-Flowg-Signature"
	// hdrReject names why a request was refused (one of the reject*
	// codes); hdrTime is the refusing node's clock in Unix milliseconds, so
	// the sender can say how far apart the clocks are.
	hdrReject = "X-Flowg-Reject"
	hdrTime   = "X-Flowg-Time"
)

// signature is the HMAC of a request's method, path and query, sender,
// receiver, timestamp, nonce and body digest. Everything it covers travels
// in the request line and headers, so a receiver checks it before it reads
// a byte of the body.
func signature(key []byte, method, target, from, to, ts, nonce, digest string) []byte {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s\n%s\n%s\n%s\n%s\n%s\n%s", method, target, from, to, ts, nonce, digest)
	return mac.Sum(nil)
}

// target is the path and query a signature covers.
func target(r *http.Request) string {
	if r.URL.RawQuery == "" {
		return r.URL.Path
	}
	return r.URL.Path + "?" + r.URL.RawQuery
}

func digestOf(body []byte) string {
	d := sha256.Sum256(body)
	return hex.EncodeToString(d[:])
}

// sign adds the signing headers to req for body, addressed to the node to
// (its node ID, or the address dialled when the ID is unknown); with no key
// (no cookie) only the sender's address.
func sign(req *http.Request, key []byte, from, to string, body []byte, now time.Time) {
	req.Header.Set(hdrFrom, from)
	if key == nil {
		return
	}
	var n [nonceLen]byte
	rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	digest := digestOf(body)
	req.Header.Set(hdrTo, to)
	req.Header.Set(hdrTimestamp, ts)
	req.Header.Set(hdrNonce, nonce)
	req.Header.Set(hdrDigest, digest)
	req.Header.Set(hdrSignature, hex.EncodeToString(signature(key, req.Method, target(req), from, to, ts, nonce, digest)))
}

// nonceLen is the bytes of a nonce (sent as 32 hex digits).
const nonceLen = 16

// Codes of refused requests, sent in hdrReject and used as metric labels.
const (
	rejectUnsigned  = "unsigned"
	rejectSignature = "bad_signature"
	rejectClock     = "clock_skew"
	rejectWrongNode = "wrong_node"
	rejectReplay    = "replay"
	rejectDigest    = "body_digest"
)

// rejectError is a refused request: its code and what to tell the sender.
type rejectError struct {
	code string
	msg  string
}

func (e *rejectError) Error() string { return e.msg }

func rejectf(code, format string, a ...any) error {
	return &rejectError{code: code, msg: fmt.Sprintf(format, a...)}
}

// verifier checks signed requests against one or more keys (the current
// cookie's and, during a rotation, the previous one's), and remembers the
// nonces it accepted while a replay of them could still pass the timestamp
// window.
type verifier struct {
	keys   [][]byte
	window time.Duration
	names  map[string]bool // what a request may be addressed to: this node

	mu      sync.Mutex
	cur     map[[nonceLen]byte]struct{}
	prev    map[[nonceLen]byte]struct{}
	rotated time.Time
}

func newVerifier(keys [][]byte, window time.Duration, names ...string) *verifier {
	v := &verifier{keys: keys, window: window, names: map[string]bool{}, cur: map[[nonceLen]byte]struct{}{}}
	for _, n := range names {
		if n != "" {
			v.names[n] = true
		}
	}
	return v
}

// verifyHeaders checks what a signature covers, all of it in the request
// line and headers: the signature (constant-time), the timestamp window,
// that the request is addressed to this node, and that its nonce is new.
// It returns the body digest the signature vouches for; the caller reads
// the body (bounded) only then, and checks it with verifyBody.
func (v *verifier) verifyHeaders(r *http.Request, now time.Time) (string, error) {
	from, to, ts, nonce, digest, sig := r.Header.Get(hdrFrom), r.Header.Get(hdrTo), r.Header.Get(hdrTimestamp),
		r.Header.Get(hdrNonce), r.Header.Get(hdrDigest), r.Header.Get(hdrSignature)
	var n [nonceLen]byte
	if ts == "" || sig == "" || len(from) > 256 || len(to) > 256 || len(digest) != 2*sha256.Size ||
		len(nonce) != 2*nonceLen || hexDecode(n[:], nonce) != nil {
		return "", rejectf(rejectUnsigned, "request is not signed")
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return "", rejectf(rejectSignature, "signature is not hex")
	}
	ok := false
	for _, k := range v.keys {
		if hmac.Equal(got, signature(k, r.Method, target(r), from, to, ts, nonce, digest)) {
			ok = true
		}
	}
	if !ok {
		return "", rejectf(rejectSignature, "signature does not match: the sender's --cluster-cookie (or --cluster-name) differs from this node's")
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", rejectf(rejectClock, "timestamp %q is not a number", ts)
	}
	if d := now.Sub(time.UnixMilli(ms)); d > v.window || d < -v.window {
		return "", rejectf(rejectClock, "clock offset: the sender's clock is %.1f s off this node's (more than the %s window)", -d.Seconds(), v.window)
	}
	if !v.names[to] {
		return "", rejectf(rejectWrongNode, "request is addressed to %q, not to this node", to)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// A nonce matters while a replay of it can still pass the window: up to
	// 2·window after it was first seen. Two generations, swapped every
	// 2·window, keep every nonce at least that long and bound the cache by
	// time, whatever the request rate.
	if now.Sub(v.rotated) >= 2*v.window {
		v.prev, v.cur, v.rotated = v.cur, make(map[[nonceLen]byte]struct{}, len(v.cur)), now
	}
	_, seen := v.cur[n]
	if _, seenBefore := v.prev[n]; seen || seenBefore {
		return "", rejectf(rejectReplay, "nonce was seen before: a replayed request")
	}
	v.cur[n] = struct{}{}
	return digest, nil
}

// verifyBody checks that body is the one the signature covers.
func verifyBody(digest string, body []byte) error {
	if !hmac.Equal([]byte(digestOf(body)), []byte(digest)) {
		return rejectf(rejectDigest, "body does not match its signed digest")
	}
	return nil
}

// nonces is the size of the replay cache, for tests.
func (v *verifier) nonces() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.cur) + len(v.prev)
}

func hexDecode(dst []byte, s string) error {
	_, err := hex.Decode(dst, []byte(s))
	return err
}

var errNotMember = errors.New("the sender is not a member of the cluster")
