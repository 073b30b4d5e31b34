package serfnet

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/testwait"
)

// TestTransport_RefusesBeforeReadingBody: a request that is not signed, or
// signed with another key, is answered 401 while its body is still being
// sent, so that a sender without the cookie cannot make a node buffer
// anything (300 such bodies of 8 MiB held open used to cost 2.4 GB).
func TestTransport_RefusesBeforeReadingBody(t *testing.T) {
	n0 := startNode(t, "n0", "", t.TempDir(), cookie)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: n0.c.Authenticate(ok, 8<<20)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	wrongKey := deriveKeys("another-cookie-of-enough-length", "flowg").signing
	for _, c := range []struct{ name, addr, path string }{
		{"gossip", n0.addr, GossipPath},
		{"replication", ln.Addr().String(), "/cluster/repl/pull"},
	} {
		for _, key := range [][]byte{nil, wrongKey} {
			t.Run(fmt.Sprintf("%s/signed=%v", c.name, key != nil), func(t *testing.T) {
				conn, err := net.Dial("tcp", c.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				req, _ := http.NewRequest("POST", "http://"+c.addr+c.path, nil)
				sign(req, key, "127.0.0.1:1", "n0", []byte("the body it claims"), time.Now())
				req.ContentLength = 8<<20 - 1
				req.Header.Set("Content-Length", fmt.Sprint(req.ContentLength))
				var head bytes.Buffer
				fmt.Fprintf(&head, "POST %s HTTP/1.1\r\nHost: %s\r\n", c.path, c.addr)
				req.Header.Write(&head)
				head.WriteString("\r\n")
				head.Write(make([]byte, 1024)) // the body starts, and is held
				conn.Write(head.Bytes())
				conn.SetReadDeadline(time.Now().Add(3 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(conn), req)
				if err != nil {
					t.Fatalf("no answer while the body was held: %v", err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("answer %s, want 401", resp.Status)
				}
			})
		}
	}
}

// TestVerifier_ReceiverAndQueryAreSigned: a request signed for one node is
// refused by every other (a captured request cannot be replayed across
// the cluster), and a changed query string breaks the signature.
func TestVerifier_ReceiverAndQueryAreSigned(t *testing.T) {
	key := deriveKeys(cookie, "flowg").signing
	v := newVerifier([][]byte{key}, time.Minute, "n1", "127.0.0.1:9114")
	now := time.Now()
	check := func(to, signedURL, sentURL string) error {
		req, _ := http.NewRequest("POST", signedURL, nil)
		sign(req, key, "127.0.0.1:9113", to, nil, now)
		sent, _ := http.NewRequest("POST", sentURL, nil)
		sent.Header = req.Header
		_, err := v.verifyHeaders(sent, now)
		return err
	}
	for _, c := range []struct {
		name, to, signed, sent, code string
	}{
		{"addressed to this node by ID", "n1", "http://x/cluster/repl/pull?a=1", "http://x/cluster/repl/pull?a=1", ""},
		{"addressed to this node's address", "127.0.0.1:9114", "http://x/p", "http://x/p", ""},
		{"addressed to another node", "n2", "http://x/p", "http://x/p", rejectWrongNode},
		{"query changed", "n1", "http://x/p?a=1", "http://x/p?a=2", rejectSignature},
		{"query added", "n1", "http://x/p", "http://x/p?a=2", rejectSignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := check(c.to, c.signed, c.sent)
			code := ""
			if re, ok := err.(*rejectError); ok {
				code = re.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code {
				t.Fatalf("got %q (%v), want %q", code, err, c.code)
			}
		})
	}
}

// TestVerifier_NonceCacheBoundedByTime: the replay cache forgets a nonce
// once a replay of it could no longer pass the timestamp window, however
// many requests came, and refuses a replay until then.
func TestVerifier_NonceCacheBoundedByTime(t *testing.T) {
	key := deriveKeys(cookie, "flowg").signing
	const window = time.Second
	v := newVerifier([][]byte{key}, window, "n1")
	t0 := time.Now()
	req := func(at time.Time) *http.Request {
		r, _ := http.NewRequest("POST", "http://x/p", nil)
		sign(r, key, "a", "n1", nil, at)
		return r
	}
	first := req(t0)
	for range 10_000 {
		if _, err := v.verifyHeaders(req(t0), t0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.verifyHeaders(first, t0); err != nil {
		t.Fatal(err)
	}
	// A replay just inside the window is still refused as a replay.
	if _, err := v.verifyHeaders(first, t0.Add(window-10*time.Millisecond)); err == nil || err.(*rejectError).code != rejectReplay {
		t.Fatalf("replay inside the window: %v", err)
	}
	for i := range 5 {
		at := t0.Add(time.Duration(i+1) * 2 * window)
		v.verifyHeaders(req(at), at)
	}
	if n := v.nonces(); n > 10 {
		t.Fatalf("%d nonces kept after the window passed, want a handful", n)
	}
}

// TestCluster_SaysWhyPeersRefuseIt: a node whose clock is 90 s off, or
// whose cookie differs, says so in words (clock offset in seconds, cookie
// mismatch) and knows it is cut off; the healthy nodes name the one they
// refuse but are not cut off.
func TestCluster_SaysWhyPeersRefuseIt(t *testing.T) {
	n0 := startNode(t, "n0", "", t.TempDir(), cookie)
	n1 := startNode(t, "n1", "", t.TempDir(), cookie)
	n1.join(n0)
	eventually(t, 5*time.Second, "formed", sees([]*testNode{n0, n1}, map[string]string{"n0": "alive", "n1": "alive"}))

	skewed := startWith(t, "skewed", "", t.TempDir(), cookie, func(c *Config) {
		c.Tune = tune
		c.Clock = func() time.Time { return time.Now().Add(90 * time.Second) }
	})
	skewed.join(n0)
	skewed.join(n1)
	eventually(t, 5*time.Second, "the skewed node knows why", func() bool {
		p, isolated := skewed.c.Problems()
		return isolated && len(p) > 0 && strings.Contains(p[0], "clock offset") && strings.Contains(p[0], "-90.")
	})
	if off := skewed.c.transport.peers.clockOffset(); off > -89*time.Second || off < -91*time.Second {
		t.Fatalf("clock offset %s, want about -90 s", off)
	}
	if _, isolated := n0.c.Problems(); isolated {
		t.Fatal("a healthy node calls itself cut off")
	}
	skewed.kill()

	wrong := startNode(t, "wrong", "", t.TempDir(), "another-cookie-of-enough-length")
	wrong.join(n0)
	eventually(t, 5*time.Second, "the node with another cookie knows why", func() bool {
		p, isolated := wrong.c.Problems()
		return isolated && len(p) > 0 && strings.Contains(p[0], "cookie mismatch")
	})
}

// TestCluster_RejoinsSnapshotNodesUntilOneAnswers: a node restarted with no
// join flags while its peers are down keeps trying the nodes of its
// snapshot, and is back in the cluster soon after one of them answers.
// Here the peer comes back alone (it had seen the first node fail, so its
// own snapshot names nobody): without the retries the two stay apart for
// good.
func TestCluster_RejoinsSnapshotNodesUntilOneAnswers(t *testing.T) {
	dir0, dir1 := t.TempDir(), t.TempDir()
	n0 := startNode(t, "n0", "", dir0, cookie)
	n1 := startNode(t, "n1", "", dir1, cookie)
	n1.join(n0)
	eventually(t, 5*time.Second, "formed", sees([]*testNode{n0, n1}, map[string]string{"n0": "alive", "n1": "alive"}))
	n1.kill()
	eventually(t, 10*time.Second, "n1 failed", sees([]*testNode{n0}, map[string]string{"n1": "failed"}))
	time.Sleep(300 * time.Millisecond) // the snapshot writes in the background
	n0.kill()

	n1 = startNode(t, "n1", n1.addr, dir1, cookie) // Serf's one rejoin finds n0 down
	time.Sleep(2 * time.Second)
	if got := len(n1.c.Nodes()); got != 1 {
		t.Fatalf("n1 knows %d nodes with n0 down", got)
	}
	back := time.Now()
	n0 = startNode(t, "n0", n0.addr, dir0, cookie)
	// The retries back off up to 30 s apart: one interval and a join.
	eventually(t, 60*time.Second, "n1 rejoins n0 by itself", sees([]*testNode{n0, n1}, map[string]string{"n0": "alive", "n1": "alive"}))
	t.Logf("together %s after n0 came back", time.Since(back).Round(10*time.Millisecond))
}

// FuzzVerifyHeaders: whatever the signing headers hold, checking them
// never panics, and only the real signature passes.
func FuzzVerifyHeaders(f *testing.F) {
	key := deriveKeys(cookie, "flowg").signing
	good, _ := http.NewRequest("POST", "http://x/cluster/repl/pull?a=1", nil)
	sign(good, key, "127.0.0.1:1", "n1", []byte("body"), time.Now())
	h := good.Header
	f.Add(h.Get(hdrFrom), h.Get(hdrTo), h.Get(hdrTimestamp), h.Get(hdrNonce), h.Get(hdrDigest), h.Get(hdrSignature))
	f.Add("", "", "", "", "", "")
	f.Add("a", "n1", "-1", strings.Repeat("z", 32), strings.Repeat("0", 64), strings.Repeat("f", 64))
	f.Fuzz(func(t *testing.T, from, to, ts, nonce, digest, sig string) {
		v := newVerifier([][]byte{key}, time.Minute, "n1")
		r, _ := http.NewRequest("POST", "http://x/cluster/repl/pull?a=1", nil)
		for k, val := range map[string]string{hdrFrom: from, hdrTo: to, hdrTimestamp: ts, hdrNonce: nonce, hdrDigest: digest, hdrSignature: sig} {
			r.Header.Set(k, val)
		}
		_, err := v.verifyHeaders(r, time.Now())
		if err == nil && !strings.EqualFold(sig, fmt.Sprintf("%x", signature(key, "POST", "/cluster/repl/pull?a=1", from, to, ts, nonce, digest))) {
			t.Fatalf("a forged signature passed: %q", sig)
		}
	})
}

// TestClose_LeavesNoGoroutine: once two nodes that gossiped are closed, no
// goroutine of theirs is left (transport send loops, rejoin and refresh
// loops, Serf's and memberlist's own).
func TestClose_LeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	n0 := startNode(t, "n0", "", t.TempDir(), cookie)
	n1 := startNode(t, "n1", "", dir, cookie)
	n1.join(n0)
	eventually(t, 5*time.Second, "formed", sees([]*testNode{n0, n1}, map[string]string{"n0": "alive", "n1": "alive"}))
	n1.kill()
	n1 = startNode(t, "n1", n1.addr, dir, cookie) // rejoins from its snapshot
	eventually(t, 5*time.Second, "back", sees([]*testNode{n0, n1}, map[string]string{"n0": "alive", "n1": "alive"}))
	n0.kill()
	n1.kill()
	http.DefaultClient.CloseIdleConnections()
	testwait.Goroutines(t, before, 5*time.Second)
}

// TestReplay_ToAnotherNode: a signed request captured on its way from n0
// to n1 is refused when replayed to n1 (its nonce was seen) and when
// replayed to n2 (it is addressed to n1), over real listeners.
func TestReplay_ToAnotherNode(t *testing.T) {
	var captured *http.Request
	var body []byte
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		captured, body = r.Clone(context.Background()), b
		w.Write([]byte("ok"))
	})
	serve := func(n *testNode) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: n.c.Authenticate(record, 1<<20)}
		ConfigureServer(srv)
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String()
	}
	n0 := startNode(t, "n0", "", t.TempDir(), cookie)
	n1 := startNode(t, "n1", "", t.TempDir(), cookie)
	n2 := startNode(t, "n2", "", t.TempDir(), cookie)
	url1, url2 := serve(n1), serve(n2)
	resp, err := n0.c.Request(context.Background(), flowg.Peer{NodeID: "n1", Endpoint: url1}, "POST", "/cluster/repl/pull?x=1", nil, []byte(`{"after":{}}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the signed request: %v %v", resp, err)
	}
	resp.Body.Close()
	replay := func(url string) (int, string) {
		req, _ := http.NewRequest("POST", url+"/cluster/repl/pull?x=1", bytes.NewReader(body))
		req.Header = captured.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get(hdrReject)
	}
	if code, why := replay(url1); code != 401 || why != rejectReplay {
		t.Fatalf("replayed to n1: %d %s", code, why)
	}
	if code, why := replay(url2); code != 401 || why != rejectWrongNode {
		t.Fatalf("replayed to n2: %d %s", code, why)
	}
}

// TestCluster_SaysWhenNoPeerIsReachable: a node whose every peer failed
// says so in its problems, naming them, without calling itself cut off
// by its own configuration.
func TestCluster_SaysWhenNoPeerIsReachable(t *testing.T) {
	n0 := startNode(t, "n0", "", t.TempDir(), cookie)
	n1 := startNode(t, "n1", "", t.TempDir(), cookie)
	n1.join(n0)
	eventually(t, 5*time.Second, "formed", sees([]*testNode{n0, n1}, map[string]string{"n0": "alive", "n1": "alive"}))
	if p, _ := n0.c.Problems(); len(p) != 0 {
		t.Fatalf("problems with every peer alive: %v", p)
	}
	n1.kill()
	eventually(t, 10*time.Second, "n0 says no peer is reachable", func() bool {
		p, isolated := n0.c.Problems()
		return !isolated && len(p) == 1 && strings.Contains(p[0], "no peer reachable: n1 (")
	})
}
