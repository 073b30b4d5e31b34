package httpapi_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/httpapi"
	"github.com/flowg-server/flowg-server/internal/testwait"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/store/storetest"
)

// clientFrom is an HTTP client whose connections leave from ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}, Timeout: 30 * time.Second}
}

func post(t *testing.T, c *http.Client, url, body string) (int, http.Header) {
	t.Helper()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// TestLogin_FloodNextToLegitimateLogin: 64 clients guessing root's
// password from one address with the real password hash (argon2id, 64 MiB)
// are answered 429 with Retry-After once their budget is spent, and a
// legitimate login from another address meanwhile answers promptly.
func TestLogin_FloodNextToLegitimateLogin(t *testing.T) {
	st := storetest.Open(t, func(c *store.Config) { c.Argon2 = store.DefaultArgon2 })
	api, err := httpapi.New(httpapi.Config{Logs: st.Logs, Auth: st.Auth, Cluster: staticView{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Public())
	defer srv.Close()
	if err := st.Auth.PutUser(context.Background(), "alice", "alice-password", nil); err != nil {
		t.Fatal(err)
	}
	url := srv.URL + "/api/v1/auth/login"
	legit := func() time.Duration {
		start := time.Now()
		if code, _ := post(t, clientFrom("127.0.0.3"), url, `{"username":"alice","password":"alice-password"}`); code != 200 {
			t.Errorf("legitimate login: %d", code)
		}
		return time.Since(start)
	}
	var alone time.Duration
	for range 3 {
		alone = max(alone, legit())
	}
	guesser := clientFrom("127.0.0.2")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var throttled, retryAfter atomic.Int64
	for i := range 64 {
		wg.Go(func() {
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				code, h := post(t, guesser, url, fmt.Sprintf(`{"username":"root","password":"guess-%d-%d"}`, i, j))
				if code == http.StatusTooManyRequests {
					throttled.Add(1)
					if h.Get("Retry-After") != "" {
						retryAfter.Add(1)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	var worst time.Duration
	for range 3 {
		worst = max(worst, legit())
	}
	close(stop)
	wg.Wait()
	t.Logf("legitimate login: worst of 3 took %s alone, %s during the flood; %d guesses throttled",
		alone.Round(time.Millisecond), worst.Round(time.Millisecond), throttled.Load())
	if throttled.Load() == 0 || retryAfter.Load() != throttled.Load() {
		t.Fatalf("%d guesses answered 429, %d with Retry-After", throttled.Load(), retryAfter.Load())
	}
	// The guesser holds at most two hashes: a login waits for at most
	// those and its own, on a machine the flood keeps busy (without the
	// bounds it waits behind 32 hashes, or is refused 503).
	if worst > 10*alone+time.Second {
		t.Fatalf("a legitimate login took %s during the flood, %s alone", worst, alone)
	}
}

// TestIngest_InFlightBudget: past the bytes of ingest in flight, a request
// is answered 429 with Retry-After and stores nothing; within it, it is
// stored.
func TestIngest_InFlightBudget(t *testing.T) {
	st := storetest.Open(t)
	api, err := httpapi.New(httpapi.Config{Logs: st.Logs, Auth: st.Auth, Cluster: staticView{}, Logger: slog.New(slog.DiscardHandler),
		Limits: httpapi.Limits{MaxBodyBytes: 1 << 20, MaxIngestInFlight: 1 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.Public())
	defer srv.Close()
	tok, err := st.Auth.Login(context.Background(), "root", "root")
	if err != nil {
		t.Fatal(err)
	}
	// A client that announces 1 MiB and holds its body takes the budget.
	held, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	fmt.Fprintf(held, "POST /api/v1/streams/app/logs/struct HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n{\"records\":[", tok, 1<<20)
	body := `{"records":[{"message":"hello"}]}`
	send := func() (int, http.Header) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/streams/app/logs/struct", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	var code int
	var h http.Header
	// Until the held request is in.
	testwait.Eventually(t, 5*time.Second, "the budget held", func() bool { code, h = send(); return code != 200 })
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Fatalf("with the budget held: %d, Retry-After %q", code, h.Get("Retry-After"))
	}
	stored := st.Logs.Usage("app").Records
	held.Close()
	testwait.Eventually(t, 5*time.Second, "the budget free again", func() bool { code, _ = send(); return code == 200 })
	if code != 200 || st.Logs.Usage("app").Records != stored+1 {
		t.Fatalf("after the held request went: %d, %d records (had %d)", code, st.Logs.Usage("app").Records, stored)
	}
}

// peers is a fixed answer of the cluster about its peers.
type peers struct {
	problems []string
	isolated bool
}

func (p peers) Problems() ([]string, bool) { return p.problems, p.isolated }

// TestReady_SaysWhyPeersRefuse: /ready lists the peers that refuse this
// node and answers 503 "isolated" while all of them do.
func TestReady_SaysWhyPeersRefuse(t *testing.T) {
	for _, c := range []struct {
		p    peers
		code int
		want string
	}{
		{peers{}, 200, `{"status":"ready"}`},
		{peers{[]string{"clock offset: n1's clock is -90.0 s from this node's"}, false}, 200, `"status":"ready","problems":["clock offset`},
		{peers{[]string{"cookie mismatch: n1 refuses this node's signature"}, true}, 503, `"status":"isolated","problems":["cookie mismatch`},
	} {
		st := storetest.Open(t)
		api, err := httpapi.New(httpapi.Config{Logs: st.Logs, Auth: st.Auth, Cluster: staticView{}, Peers: c.p, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		api.SetReady(true)
		srv := httptest.NewServer(api.Management(nil))
		resp, err := http.Get(srv.URL + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(b), c.want) {
			t.Errorf("%+v: %d %s, want %d %s", c.p, resp.StatusCode, b, c.code, c.want)
		}
	}
}

// TestLimitListener: one client holding its share of connections cannot
// take another client's, and a crowd cannot take more than the total;
// connections that close give their place back.
func TestLimitListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim, err := httpapi.LimitListener(ln, "test", httpapi.ConnLimits{Max: 8, PerClient: 3}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(lim)
	defer srv.Close()
	addr := ln.Addr().String()
	served := func(ip string) bool {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		return strings.HasSuffix(string(b), "ok")
	}
	hold := func(ip string, n int) []net.Conn {
		var out []net.Conn
		for range n {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		time.Sleep(100 * time.Millisecond)
		return out
	}
	idle := hold("127.0.0.2", 10) // 3 kept, 7 closed at once
	if served("127.0.0.2") {
		t.Fatal("a client over its share was served")
	}
	if !served("127.0.0.3") {
		t.Fatal("another client was not served")
	}
	crowd := append(hold("127.0.0.4", 3), hold("127.0.0.5", 2)...) // 3+3+2 = 8: full
	if served("127.0.0.6") {
		t.Fatal("a client was served past the total")
	}
	for _, c := range append(idle, crowd...) {
		c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	if !served("127.0.0.2") {
		t.Fatal("closed connections did not give their place back")
	}
}

var _ = flowg.Record{}

// TestClusterNodes_Names: the public API names a node's fields in
// snake_case and, for one release, also by their former names; the
// management API keeps FlowG's names.
func TestClusterNodes_Names(t *testing.T) {
	n := newNode(t)
	code, pub := n.do("GET", "/api/v1/cluster/nodes", "", "")
	if code != 200 || !strings.Contains(pub, `"node_id":"n0"`) || !strings.Contains(pub, `"node-id":"n0"`) {
		t.Fatalf("public: %d %s", code, pub)
	}
	resp, err := http.Get(n.mgmt.URL + "/cluster/nodes")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"node-id":"n0"`) || strings.Contains(string(b), "node_id") {
		t.Fatalf("management: %s", b)
	}
}
