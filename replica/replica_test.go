package replica_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/internal/serftest"
	"github.com/flowg-server/flowg-server/internal/testwait"
	"github.com/flowg-server/flowg-server/replica"
	"github.com/flowg-server/flowg-server/serfnet"
	"github.com/flowg-server/flowg-server/store"
	"github.com/flowg-server/flowg-server/store/storetest"
)

// node is one whole replicating node in this process: a real store, a
// real Serf cluster and the replication endpoints on a real listener.
type node struct {
	id      string
	st      *store.Store
	cluster *serfnet.Cluster
	rep     *replica.Replicator
	srv     *http.Server
	addr    string
	stop    context.CancelFunc
	done    chan struct{}

	mu      sync.Mutex
	refused map[string]bool // nodes whose pulls this node refuses: a cut link
}

// tune is the timings the tests share.
var tune = serftest.Tune

// startNode starts a node on addr ("": any free port) with an empty disk.
func startNode(t *testing.T, id, addr string) *node {
	t.Helper()
	return startVersions(t, id, addr, replica.DefaultVersions)
}

// startVersions is startNode for a node that speaks the replication
// versions vs (as a node of another release would).
func startVersions(t *testing.T, id, addr, vs string) *node {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // a node started again takes its old port back
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.Open(t, func(c *store.Config) { c.NodeID = id })
	ccfg := serfnet.DefaultConfig()
	ccfg.NodeID, ccfg.Advertise, ccfg.Cookie = id, ln.Addr().String(), "a-cookie-of-sixteen-bytes-or-more"
	ccfg.Tags = map[string]string{"endpoint": "http://" + ln.Addr().String(), replica.OriginTag: st.Logs.Origin(), replica.VersionsTag: vs}
	ccfg.Tune, ccfg.Logger = tune, slog.New(slog.DiscardHandler)
	cluster, err := serfnet.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	rcfg := replica.DefaultConfig()
	rcfg.Meta, rcfg.Logs, rcfg.Cluster = st, st.Logs, cluster
	rcfg.Logger, rcfg.Versions = slog.New(slog.DiscardHandler), vs
	rep, err := replica.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{id: id, st: st, cluster: cluster, rep: rep, addr: ln.Addr().String(), done: make(chan struct{}), refused: map[string]bool{}}
	mux := http.NewServeMux()
	mux.Handle("POST "+serfnet.GossipPath, cluster.Handler())
	for pattern, h := range rep.Handlers() {
		mux.Handle(pattern, cluster.Authenticate(n.cut(h), replica.MaxRequest))
	}
	n.srv = &http.Server{Handler: mux}
	serfnet.ConfigureServer(n.srv)
	go n.srv.Serve(ln)
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	go func() { defer close(n.done); rep.Run(ctx) }()
	t.Cleanup(n.kill)
	return n
}

// cut refuses the pulls of the nodes in refused, as a cut link would.
func (n *node) cut(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct{ Node string }
		json.Unmarshal(b, &body)
		n.mu.Lock()
		refused := n.refused[body.Node]
		n.mu.Unlock()
		if refused {
			http.Error(w, "cut", http.StatusServiceUnavailable)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		h.ServeHTTP(w, r)
	})
}

func (n *node) refuse(id string) {
	n.mu.Lock()
	n.refused[id] = true
	n.mu.Unlock()
}

// kill stops the node without leaving the cluster, as kill -9 does.
func (n *node) kill() {
	select {
	case <-n.done:
		return
	default:
	}
	n.srv.Close()
	n.cluster.Close()
	n.stop()
	<-n.done
}

func (n *node) join(t *testing.T, to *node) {
	t.Helper()
	if _, err := n.cluster.Join(context.Background(), []flowg.Peer{{NodeID: to.id, Endpoint: "http://" + to.addr}}); err != nil {
		t.Fatal(err)
	}
}

// ingest stores n records on the node, as its HTTP API would.
func (n *node) ingest(t *testing.T, count int) {
	t.Helper()
	recs := make([]flowg.Record, count)
	for i := range recs {
		recs[i] = flowg.Record{Timestamp: time.Now(), Fields: map[string]string{"n": fmt.Sprint(i)}}
	}
	if err := n.st.Logs.Append(context.Background(), "app", recs); err != nil {
		t.Fatal(err)
	}
}

// records counts the records of stream app the node answers with.
func (n *node) records(t *testing.T) int {
	t.Helper()
	page, err := n.st.Logs.Query(context.Background(), flowg.Query{Stream: "app", Limit: 10000})
	if err != nil {
		return 0
	}
	return len(page.Records)
}

// status is how n sees the member id.
func (n *node) status(id string) string {
	for _, m := range n.cluster.Nodes() {
		if m.ID == id {
			return string(m.Status)
		}
	}
	return ""
}

var eventually = testwait.Eventually

// TestReplication_DeadOriginRelayed: records a node took and passed to one
// peer only reach the other peer from that one once the node dies, at once
// rather than when a pull already waiting on that peer ends.
func TestReplication_DeadOriginRelayed(t *testing.T) {
	n0, n1, n2 := startNode(t, "n0", ""), startNode(t, "n1", ""), startNode(t, "n2", "")
	n1.join(t, n0)
	n2.join(t, n0)
	n1.refuse("n2") // n2 cannot pull from n1
	ctx := context.Background()
	n1.ingest(t, 100)
	origin, head := n1.st.Logs.Origin(), n1.st.Logs.Head()
	if !n1.rep.WaitCopied(ctx, head, 10*time.Second) {
		t.Fatal("n0 does not hold n1's records")
	}
	if got := n2.st.Logs.Heads()[origin]; got != 0 {
		t.Fatalf("n2 holds n1's records up to %d through a cut link", got)
	}
	// n0 and n2 take nothing new: each one's pull of the other waits for
	// the default 25 s.
	n1.kill()
	start := time.Now()
	eventually(t, 10*time.Second, "n2 holds n1's records, from n0", func() bool {
		return n2.st.Logs.Heads()[origin] == head
	})
	t.Logf("n2 holds the dead n1's records %s after the kill", time.Since(start).Round(time.Millisecond))
}

// TestReplication_EmptyDiskSameNodeID: a node that comes back under its
// node ID with an empty disk (a deleted volume claim, a rescheduled
// allocation) writes under a new origin: its new records are not taken by
// its peers for the ones they hold of its former self, an answer waits for
// a real second copy, and its former records come back to it.
func TestReplication_EmptyDiskSameNodeID(t *testing.T) {
	n0, n1, n2 := startNode(t, "n0", ""), startNode(t, "n1", ""), startNode(t, "n2", "")
	n1.join(t, n0)
	n2.join(t, n0)
	n1.ingest(t, 100)
	former := n1.st.Logs.Origin()
	eventually(t, 10*time.Second, "n0 and n2 hold n1's 100 records", func() bool {
		return n0.st.Logs.Heads()[former] == 100 && n2.st.Logs.Heads()[former] == 100
	})
	n1.kill()
	eventually(t, 10*time.Second, "n0 sees n1 failed", func() bool { return n0.status("n1") == "failed" })

	n1 = startNode(t, "n1", n1.addr) // same node ID and address, empty disk
	if n1.st.Logs.Origin() == former {
		t.Fatalf("the empty disk writes under the former origin %s", former)
	}
	n1.join(t, n0)
	eventually(t, 10*time.Second, "n0 sees n1 alive again", func() bool { return n0.status("n1") == "alive" })
	n1.ingest(t, 50)
	if !n1.rep.WaitCopied(context.Background(), n1.st.Logs.Head(), 10*time.Second) {
		t.Fatal("no peer holds the new records")
	}
	start := time.Now()
	eventually(t, 10*time.Second, "every node holds all 150 records", func() bool {
		return n0.records(t) == 150 && n1.records(t) == 150 && n2.records(t) == 150
	})
	t.Logf("n1 holds its former records again %s after it took new ones", time.Since(start).Round(time.Millisecond))
}

// TestReplication_WireVersions: a node that speaks versions 1-2 replicates
// with a node that speaks 1 (in version 1) and with one that speaks 2; the
// nodes of 1 and of 2 leave each other out, and a request in a version a
// node does not speak is refused with the version it does.
func TestReplication_WireVersions(t *testing.T) {
	n0, n1, n2 := startNode(t, "n0", ""), startVersions(t, "n1", "", "1-2"), startVersions(t, "n2", "", "2-2")
	n1.join(t, n0)
	n2.join(t, n0)
	eventually(t, 10*time.Second, "three members", func() bool {
		return n0.status("n2") == "alive" && n2.status("n1") == "alive"
	})
	n0.ingest(t, 10)
	n1.ingest(t, 5)
	eventually(t, 10*time.Second, "n0 and n1 hold each other's records", func() bool {
		return n0.records(t) == 15 && n1.records(t) == 15
	})
	n2.ingest(t, 3)
	eventually(t, 10*time.Second, "n1 and n2 hold each other's records", func() bool {
		return n1.records(t) == 18 && n2.records(t) == 8
	})
	time.Sleep(time.Second)
	if a, b := n0.records(t), n2.records(t); a != 15 || b != 8 {
		t.Fatalf("n0 (version 1) holds %d records, n2 (version 2) %d: want 15 and 8, none of the other's", a, b)
	}

	h := n0.rep.Handlers()["POST "+replica.PathPull]
	req, _ := http.NewRequest("POST", "/cluster/repl/pull", bytes.NewReader([]byte(`{}`)))
	req.Header.Set(replica.HeaderVersion, "2")
	rec := &recorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	if rec.code != http.StatusBadRequest || rec.header.Get(replica.HeaderVersion) != "1" {
		t.Fatalf("a pull in version 2 to a node of version 1: %d, version %q", rec.code, rec.header.Get(replica.HeaderVersion))
	}
}

// recorder is the least of an http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) { r.code = code }
