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

// Headers of a signed request.
const (
	hdrFrom      = "X-Flowg-From"
	hdrTimestamp = "X-Flowg-Timestamp"
	hdrNonce     = "X-Flowg-Nonce"
	hdrSignature = "X-Flowg-Signature"
)

// signature is the HMAC of a request's method, path, sender, timestamp,
// nonce and body digest.
func signature(key []byte, method, path, from, ts, nonce string, body []byte) []byte {
	digest := sha256.Sum256(body)
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s\n%s\n%s\n%s\n%s\n%x", method, path, from, ts, nonce, digest)
	return mac.Sum(nil)
}

// sign adds the signing headers to req for body; with no key (no cookie)
// only the sender's address.
func sign(req *http.Request, key []byte, from string, body []byte) {
	req.Header.Set(hdrFrom, from)
	if key == nil {
		return
	}
	var n [16]byte
	rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	req.Header.Set(hdrTimestamp, ts)
	req.Header.Set(hdrNonce, nonce)
	req.Header.Set(hdrSignature, hex.EncodeToString(signature(key, req.Method, req.URL.Path, from, ts, nonce, body)))
}

// Reasons a request is rejected.
var (
	errUnsigned = errors.New("request is not signed")
	errBadSig   = errors.New("signature does not match")
	errStale    = errors.New("timestamp is outside the window")
	errReplay   = errors.New("nonce was seen before")
	errBusy     = errors.New("nonce cache is full")
)

// verifier checks signed requests against one or more keys (the current
// cookie's and, during a rotation, the previous one's).
type verifier struct {
	keys   [][]byte
	window time.Duration

	mu     sync.Mutex
	nonces map[string]time.Time // nonce → when it stops mattering
	max    int
}

func newVerifier(keys [][]byte, window time.Duration, maxNonces int) *verifier {
	return &verifier{keys: keys, window: window, nonces: map[string]time.Time{}, max: maxNonces}
}

// verify checks the signature, the timestamp window and the nonce; the
// comparison is constant time.
func (v *verifier) verify(r *http.Request, body []byte, now time.Time) error {
	from, ts, nonce, sig := r.Header.Get(hdrFrom), r.Header.Get(hdrTimestamp), r.Header.Get(hdrNonce), r.Header.Get(hdrSignature)
	if ts == "" || nonce == "" || sig == "" || len(nonce) > 64 || len(from) > 256 {
		return errUnsigned
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return errBadSig
	}
	ok := false
	for _, k := range v.keys {
		if hmac.Equal(got, signature(k, r.Method, r.URL.Path, from, ts, nonce, body)) {
			ok = true
		}
	}
	if !ok {
		return errBadSig
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errStale
	}
	if d := now.Sub(time.UnixMilli(ms)); d > v.window || d < -v.window {
		return errStale
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, seen := v.nonces[nonce]; seen {
		return errReplay
	}
	if len(v.nonces) >= v.max {
		for n, until := range v.nonces {
			if now.After(until) {
				delete(v.nonces, n)
			}
		}
		if len(v.nonces) >= v.max {
			return errBusy
		}
	}
	// A nonce matters while its timestamp is inside the window.
	v.nonces[nonce] = time.UnixMilli(ms).Add(v.window)
	return nil
}
