// Package replica makes a cluster hold one dataset: it spreads changes to
// users, roles, tokens and stream settings (versioned, last writer wins,
// with tombstones) and pulls every other node's log records, over signed
// requests to the management port.
//
// Two mechanisms, because the data comes in two shapes:
//
//   - Small entries that must agree everywhere (auth and config) are pushed
//     to every alive peer as soon as they change, and a periodic
//     anti-entropy round compares a digest with one peer (one hash per
//     database when nothing differs, bucket hashes only when something does)
//     and exchanges only the differing buckets.
//   - Log records are append-only with a durable identity (origin node,
//     origin sequence). Each node pulls from each alive peer the records
//     that peer took after the last sequence it holds, in bounded batches,
//     one batch applied before the next is asked for; the peer holds the
//     request open until it has something (a long poll), so an idle cluster
//     sends one small request per peer per wait. Records of an origin that
//     is not alive are pulled from the other peers, so the loss of a node
//     does not lose what it had already passed on.
package replica

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	flowg "github.com/flowg-server/flowg-server"
)

// Paths of the replication endpoints on the management port.
const (
	PathMeta    = "/cluster/repl/meta"
	PathDigest  = "/cluster/repl/digest"
	PathEntries = "/cluster/repl/entries"
	PathPull    = "/cluster/repl/pull"
)

// OriginTag is the member tag that names the origin of the records a node
// takes (the store's Origin); a member without it is taken to write under
// its node ID.
const OriginTag = "origin"

// originOf is the origin of the records member n takes.
func originOf(n flowg.Node) string {
	if o := n.Tags[OriginTag]; o != "" {
		return o
	}
	return n.ID
}

// MaxRequest bounds the body of a replication request.
const MaxRequest = 8 << 20

// maxAnswer bounds the body of an answer: a pull batch (4 MiB by default),
// or every user, role, token and setting when a node resyncs.
const maxAnswer = 64 << 20

// Meta is what replication needs of the auth and config databases.
type Meta interface {
	OnMetaChange(func([]flowg.MetaEntry))
	MetaEntries(buckets ...uint8) ([]flowg.MetaEntry, error)
	MetaDigest() (map[string]map[uint8]uint64, error)
	ApplyMeta([]flowg.MetaEntry) (int, error)
	ReplaceMeta([]flowg.MetaEntry) error
	DropTombstones(window time.Duration) (int, error)
}

// Logs is what replication needs of the log store.
type Logs interface {
	Origin() string
	Heads() map[string]uint64
	Changed() <-chan struct{}
	ReadOrigin(origin string, after uint64, limit, maxBytes int) ([]flowg.ReplRecord, uint64, error)
	ApplyOrigin(ctx context.Context, origin string, recs []flowg.ReplRecord, upTo uint64) (int, error)
}

// Cluster is the membership and the signed requests between nodes.
type Cluster interface {
	NodeID() string
	Nodes() []flowg.Node
	Request(ctx context.Context, to flowg.Peer, method, path string, header http.Header, body []byte) (*http.Response, error)
}

// Config sets up a Replicator.
type Config struct {
	Meta    Meta
	Logs    Logs
	Cluster Cluster
	// TombstoneWindow is how long deletes are remembered; a node down for
	// longer resyncs instead of merging. Default 7 days.
	TombstoneWindow time.Duration
	// Absent is how long this node was down before this start (from its
	// state directory); 0 for a new node.
	Absent time.Duration
	// AntiEntropy is the time between digest comparisons. Default 5s.
	AntiEntropy time.Duration
	// PullWait is how long a peer holds a pull that has nothing to return.
	// Default 25s.
	PullWait time.Duration
	// BatchRecords and BatchBytes bound one pull's answer. Defaults 5,000
	// and 4 MiB.
	BatchRecords, BatchBytes int
	// Versions is the range of replication protocol versions this node
	// speaks, as "min-max"; advertise the same as the member tag
	// VersionsTag. Default DefaultVersions; tests set others to play a
	// node of another release.
	Versions   string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Replicator runs the replication of one node.
type Replicator struct {
	cfg  Config
	self string // this node's origin
	node string // this node's ID
	log  *slog.Logger
	m    *metrics

	versions versions

	pushMu  sync.Mutex
	pending []flowg.MetaEntry
	pushCh  chan struct{}

	absent atomic.Int64 // seconds; 0 once resynced

	mu          sync.Mutex
	knownHeads  map[string]uint64    // per origin, the highest head any peer reported
	behindSince map[string]time.Time // per origin, since when this node is behind it
	sent, recvd map[string]uint64    // per peer node ID, replication bytes
	peerHolds   map[string]uint64    // per peer, how much of this node's origin it holds
	held        chan struct{}        // closed and replaced when peerHolds grows
	pullers     map[string]puller    // per peer node ID
	relaying    map[string]bool      // origins pulled from every peer: see relayed
	relayCtx    context.Context      // cancelled (and replaced) when relaying grows
	relayGrew   context.CancelCauseFunc

	versionLogged map[string]string // per peer, the versions tag last logged as incompatible
}

// DefaultConfig returns a Config with the documented defaults; Meta, Logs
// and Cluster are still to be set.
func DefaultConfig() Config {
	return Config{
		TombstoneWindow: 7 * 24 * time.Hour, AntiEntropy: 5 * time.Second, PullWait: 25 * time.Second,
		BatchRecords: 5000, BatchBytes: 4 << 20, Versions: DefaultVersions,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.Meta == nil || c.Logs == nil || c.Cluster == nil:
		return errors.New("replica: Meta, Logs and Cluster are required")
	case c.TombstoneWindow <= 0 || c.AntiEntropy <= 0 || c.PullWait <= 0:
		return errors.New("replica: tombstone window, anti-entropy interval and pull wait must be positive")
	case c.BatchRecords <= 0 || c.BatchBytes <= 0:
		return errors.New("replica: batch bounds must be positive")
	case c.Absent < 0:
		return errors.New("replica: absence must not be negative")
	}
	if _, err := parseVersions(c.Versions); err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	return nil
}

// New checks cfg; nothing replicates until Run.
func New(cfg Config) (*Replicator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Replicator{
		cfg: cfg, self: cfg.Logs.Origin(), node: cfg.Cluster.NodeID(), log: log.With("component", "replication"), m: newMetrics(cfg.Registerer),
		pushCh:     make(chan struct{}, 1),
		knownHeads: map[string]uint64{}, behindSince: map[string]time.Time{},
		sent: map[string]uint64{}, recvd: map[string]uint64{}, pullers: map[string]puller{},
		peerHolds: map[string]uint64{}, held: make(chan struct{}),
		relaying: map[string]bool{}, versionLogged: map[string]string{},
	}
	r.versions, _ = parseVersions(cfg.Versions)
	r.relayCtx, r.relayGrew = context.WithCancelCause(context.Background())
	if cfg.Absent > cfg.TombstoneWindow {
		r.absent.Store(int64(cfg.Absent.Seconds()))
		r.log.Warn("this node was down longer than deletes are remembered; it takes users, roles, tokens and settings from the cluster before it shares its own",
			"down", cfg.Absent.Round(time.Minute), "tombstone_window", cfg.TombstoneWindow)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(lagCollector{r}); err != nil {
			return nil, err
		}
	}
	cfg.Meta.OnMetaChange(r.changed)
	return r, nil
}

// Handlers are the replication endpoints, by pattern, for the management
// mux; wrap them in the cluster's request authentication.
func (r *Replicator) Handlers() map[string]http.Handler {
	return map[string]http.Handler{
		"POST " + PathMeta:    r.versioned(r.serveMeta),
		"POST " + PathDigest:  r.versioned(r.serveDigest),
		"POST " + PathEntries: r.versioned(r.serveEntries),
		"POST " + PathPull:    r.versioned(r.servePull),
	}
}

// Run replicates until ctx ends.
func (r *Replicator) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.pushLoop(ctx) })
	wg.Go(func() { r.antiEntropyLoop(ctx) })
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		r.noteRelayed()
		r.reconcilePullers(ctx, &wg)
		select {
		case <-ctx.Done():
			r.mu.Lock()
			for _, pl := range r.pullers {
				pl.cancel()
			}
			r.mu.Unlock()
			wg.Wait()
			return
		case <-tick.C:
		}
	}
}

// alivePeers are the alive members other than this node that speak a
// replication version this node speaks.
func (r *Replicator) alivePeers() []flowg.Node {
	var out []flowg.Node
	for _, n := range r.cfg.Cluster.Nodes() {
		if n.ID != r.node && n.Status == flowg.StatusAlive && n.Endpoint != "" && r.versionFor(n) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// request sends a signed request and returns the body of a 200 answer.
func (r *Replicator) request(ctx context.Context, peer flowg.Node, path string, body []byte) ([]byte, error) {
	v := r.versionFor(peer)
	if v == 0 {
		return nil, fmt.Errorf("%s speaks no replication version this node speaks", peer.ID)
	}
	header := http.Header{HeaderVersion: {strconv.Itoa(v)}}
	resp, err := r.cfg.Cluster.Request(ctx, flowg.Peer{NodeID: peer.ID, Endpoint: peer.Endpoint}, http.MethodPost, path, header, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	r.count(peer.ID, len(body), len(b))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnswer {
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", peer.ID, path, maxAnswer)
	}
	if resp.StatusCode == http.StatusConflict {
		return nil, errResync
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %s: %s", peer.ID, path, resp.Status, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	if got := resp.Header.Get(HeaderVersion); got != "" && got != strconv.Itoa(v) {
		return nil, fmt.Errorf("%s %s: answered in replication version %s, asked in %d", peer.ID, path, got, v)
	}
	return b, nil
}

var errResync = errors.New("the peer asks this node to resync")

func (r *Replicator) count(peer string, sent, recvd int) {
	r.mu.Lock()
	r.sent[peer] += uint64(sent)
	r.recvd[peer] += uint64(recvd)
	r.mu.Unlock()
	r.m.bytes.WithLabelValues("sent").Add(float64(sent))
	r.m.bytes.WithLabelValues("received").Add(float64(recvd))
}

// Meta: push at once.

func (r *Replicator) changed(entries []flowg.MetaEntry) {
	r.pushMu.Lock()
	r.pending = append(r.pending, entries...)
	r.pushMu.Unlock()
	select {
	case r.pushCh <- struct{}{}:
	default:
	}
}

type metaBody struct {
	Entries wireEntries `json:"entries"`
	Absent  int64       `json:"absent,omitempty"`
}

func (r *Replicator) pushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.pushCh:
		}
		r.pushMu.Lock()
		batch := r.pending
		r.pending = nil
		r.pushMu.Unlock()
		if len(batch) == 0 || r.absent.Load() > 0 {
			continue // a node that must resync shares nothing first
		}
		body, _ := json.Marshal(metaBody{Entries: batch})
		var wg sync.WaitGroup
		for _, p := range r.alivePeers() {
			wg.Go(func() {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if _, err := r.request(pctx, p, PathMeta, body); err != nil && ctx.Err() == nil {
					// Anti-entropy repairs what a failed push missed.
					r.log.Debug("push failed", "peer", p.ID, "err", err)
				}
			})
		}
		wg.Wait()
	}
}

// refuse answers 409 to a node that was away longer than deletes are
// remembered (requests from a node that has not resynced since it started
// say how long it was down), and 503 while this node itself has not
// resynced.
func (r *Replicator) refuse(w http.ResponseWriter, absentSeconds int64) bool {
	if absentSeconds > int64(r.cfg.TombstoneWindow/time.Second) {
		http.Error(w, "resync: down longer than the tombstone window", http.StatusConflict)
		return true
	}
	if r.absent.Load() > 0 {
		http.Error(w, "this node is resyncing", http.StatusServiceUnavailable)
		return true
	}
	return false
}

func (r *Replicator) serveMeta(w http.ResponseWriter, req *http.Request) {
	var body metaBody
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		http.Error(w, "bad entries: "+err.Error(), http.StatusBadRequest)
		return
	}
	if r.refuse(w, body.Absent) {
		return
	}
	n, err := r.cfg.Meta.ApplyMeta(body.Entries)
	if errors.Is(err, flowg.ErrInvalid) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	} else if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	r.m.metaApplied.Add(float64(n))
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"applied":%d}`, n)
}

// Meta: anti-entropy.

type digestBody struct {
	// Root is one hash per database: equal roots end the round.
	Root   map[string]uint64 `json:"root"`
	Absent int64             `json:"absent,omitempty"`
}

type digestAnswer struct {
	Same    bool                        `json:"same"`
	Buckets map[string]map[uint8]uint64 `json:"buckets,omitempty"`
}

func rootOf(d map[string]map[uint8]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for db, buckets := range d {
		var h uint64
		for b, v := range buckets {
			h ^= (v + uint64(b)) * 0x9e3779b97f4a7c15
		}
		out[db] = h
	}
	return out
}

func (r *Replicator) serveDigest(w http.ResponseWriter, req *http.Request) {
	var body digestBody
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
		http.Error(w, "bad digest: "+err.Error(), http.StatusBadRequest)
		return
	}
	if r.refuse(w, body.Absent) {
		return
	}
	d, err := r.cfg.Meta.MetaDigest()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ans := digestAnswer{Same: maps.Equal(rootOf(d), body.Root)}
	if !ans.Same {
		ans.Buckets = d
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ans)
}

type entriesBody struct {
	All     bool    `json:"all,omitempty"`
	Buckets []uint8 `json:"buckets,omitempty"`
	Absent  int64   `json:"absent,omitempty"`
}

func (r *Replicator) serveEntries(w http.ResponseWriter, req *http.Request) {
	var body entriesBody
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil || !body.All && len(body.Buckets) == 0 {
		http.Error(w, "bad request: want all or buckets", http.StatusBadRequest)
		return
	}
	// Everything is asked for by a node that resyncs. A node that must
	// resync itself gives its entries only to another in the same case
	// (when the whole cluster was down, one of them has to go first).
	if body.All && r.absent.Load() > 0 && body.Absent == 0 {
		http.Error(w, "this node is resyncing", http.StatusServiceUnavailable)
		return
	}
	if !body.All && r.refuse(w, body.Absent) {
		return
	}
	entries, err := r.cfg.Meta.MetaEntries(body.Buckets...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(metaBody{Entries: entries})
}

func (r *Replicator) antiEntropyLoop(ctx context.Context) {
	for {
		wait := r.cfg.AntiEntropy/2 + time.Duration(rand.Int64N(int64(r.cfg.AntiEntropy)))
		if r.absent.Load() > 0 {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		peers := r.alivePeers()
		if len(peers) == 0 {
			continue
		}
		p := peers[rand.IntN(len(peers))]
		if err := r.syncWith(ctx, p); err != nil && ctx.Err() == nil {
			r.log.Debug("anti-entropy round failed", "peer", p.ID, "err", err)
		}
		if n, err := r.cfg.Meta.DropTombstones(r.cfg.TombstoneWindow); err == nil && n > 0 {
			r.log.Info("dropped tombstones older than the window", "count", n)
		}
	}
}

// syncWith compares digests with one peer and exchanges the entries of the
// buckets that differ, both ways. A node back from an absence says how long
// it was down; told to resync (409), it takes the peer's entries instead.
func (r *Replicator) syncWith(ctx context.Context, p flowg.Node) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d, err := r.cfg.Meta.MetaDigest()
	if err != nil {
		return err
	}
	body, _ := json.Marshal(digestBody{Root: rootOf(d), Absent: r.absent.Load()})
	b, err := r.request(ctx, p, PathDigest, body)
	if errors.Is(err, errResync) {
		return r.resyncFrom(ctx, p)
	} else if err != nil {
		return err
	}
	var ans digestAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return err
	}
	if r.absent.Swap(0) > 0 {
		r.log.Info("a peer accepts this node's entries after its absence; merging")
	}
	if ans.Same {
		return nil
	}
	var buckets []uint8
	for db, theirs := range ans.Buckets {
		for bk, h := range theirs {
			if d[db][bk] != h && !slices.Contains(buckets, bk) {
				buckets = append(buckets, bk)
			}
		}
	}
	for db, ours := range d {
		for bk, h := range ours {
			if ans.Buckets[db][bk] != h && !slices.Contains(buckets, bk) {
				buckets = append(buckets, bk)
			}
		}
	}
	if len(buckets) == 0 {
		return nil
	}
	// Theirs to us...
	req, _ := json.Marshal(entriesBody{Buckets: buckets})
	b, err = r.request(ctx, p, PathEntries, req)
	if err != nil {
		return err
	}
	var theirs metaBody
	if err := json.Unmarshal(b, &theirs); err != nil {
		return err
	}
	n, err := r.cfg.Meta.ApplyMeta(theirs.Entries)
	if err != nil {
		return err
	}
	r.m.metaApplied.Add(float64(n))
	r.m.repairs.Add(float64(n))
	// ... and ours to them.
	ours, err := r.cfg.Meta.MetaEntries(buckets...)
	if err != nil || len(ours) == 0 {
		return err
	}
	push, _ := json.Marshal(metaBody{Entries: ours})
	_, err = r.request(ctx, p, PathMeta, push)
	return err
}

// resyncFrom replaces this node's users, roles, tokens and settings with a
// peer's.
func (r *Replicator) resyncFrom(ctx context.Context, p flowg.Node) error {
	body, _ := json.Marshal(entriesBody{All: true, Absent: r.absent.Load()})
	b, err := r.request(ctx, p, PathEntries, body)
	if err != nil {
		return err
	}
	var all metaBody
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	if err := r.cfg.Meta.ReplaceMeta(all.Entries); err != nil {
		return err
	}
	r.absent.Store(0)
	r.m.resyncs.Inc()
	r.log.Info("resynced users, roles, tokens and settings from a peer", "peer", p.ID, "entries", len(all.Entries))
	return nil
}
