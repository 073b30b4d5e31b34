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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
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

// Replicator runs the replication of one node: two mechanisms behind one
// front. settingsSync keeps users, roles, tokens and stream settings the
// same everywhere (push at once, anti-entropy every few seconds, resync
// after a long absence); logPull brings every origin's log records here
// (per-origin long-polling pulls, relay of dead origins) and says which
// peers hold this node's records. core is what both share: the
// configuration, the signed requests to peers and their traffic, and the
// protocol versions.
type Replicator struct {
	*core
	*settingsSync
	*logPull
}

// core is what both mechanisms share.
type core struct {
	cfg  Config
	self string // this node's origin
	node string // this node's ID
	log  *slog.Logger
	m    *metrics

	versions versions

	trafficMu     sync.Mutex
	sent, recvd   map[string]uint64 // per peer node ID, replication bytes
	versionLogged map[string]string // per peer, the versions tag last logged as incompatible
}

// settingsSync replicates users, roles, tokens and stream settings.
type settingsSync struct {
	*core
	pushMu  sync.Mutex
	pending []flowg.MetaEntry
	pushCh  chan struct{}

	absent atomic.Int64 // seconds; 0 once resynced
}

// logPull replicates log records, and follows which peers hold this
// node's.
type logPull struct {
	*core
	mu          sync.Mutex
	knownHeads  map[string]uint64    // per origin, the highest head any peer reported
	behindSince map[string]time.Time // per origin, since when this node is behind it
	peerHolds   map[string]uint64    // per peer, how much of this node's origin it holds
	held        chan struct{}        // closed and replaced when peerHolds grows
	pullers     map[string]puller    // per peer node ID
	relaying    map[string]bool      // origins pulled from every peer: see relayed
	relayCtx    context.Context      // cancelled (and replaced) when relaying grows
	relayGrew   context.CancelCauseFunc
}

// DefaultConfig returns a Config with the documented defaults; Meta, Logs
// and Cluster are still to be set.
func DefaultConfig() Config {
	return Config{
		TombstoneWindow: 7 * 24 * time.Hour, AntiEntropy: 5 * time.Second, PullWait: 25 * time.Second,
		BatchRecords: 5000, BatchBytes: 4 << 20, Versions: DefaultVersions,
	}
}

// RegisterFlags registers --cluster-tombstone-window; the node fills in
// the rest.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.TombstoneWindow, "cluster-tombstone-window", c.TombstoneWindow, "how long deletes of users, roles, tokens and settings are remembered; a node down longer takes the cluster's instead of sharing its own")
}

// Validate checks what a user sets; each error names its flag. New also
// checks what the node fills in.
func (c Config) Validate() error {
	if c.TombstoneWindow < time.Hour {
		return fmt.Errorf("--cluster-tombstone-window %s: must be at least 1h", c.TombstoneWindow)
	}
	return nil
}

// validateWiring checks what the node fills in.
func (c Config) validateWiring() error {
	switch {
	case c.Meta == nil || c.Logs == nil || c.Cluster == nil:
		return errors.New("replica: Meta, Logs and Cluster are required")
	case c.AntiEntropy <= 0 || c.PullWait <= 0:
		return errors.New("replica: anti-entropy interval and pull wait must be positive")
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
	if err := errors.Join(cfg.Validate(), cfg.validateWiring()); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &core{
		cfg: cfg, self: cfg.Logs.Origin(), node: cfg.Cluster.NodeID(), log: log.With("component", "replication"), m: newMetrics(cfg.Registerer),
		sent: map[string]uint64{}, recvd: map[string]uint64{}, versionLogged: map[string]string{},
	}
	c.versions, _ = parseVersions(cfg.Versions)
	r := &Replicator{
		core:         c,
		settingsSync: &settingsSync{core: c, pushCh: make(chan struct{}, 1)},
		logPull: &logPull{core: c,
			knownHeads: map[string]uint64{}, behindSince: map[string]time.Time{}, pullers: map[string]puller{},
			peerHolds: map[string]uint64{}, held: make(chan struct{}), relaying: map[string]bool{},
		},
	}
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
func (r *core) alivePeers() []flowg.Node {
	var out []flowg.Node
	for _, n := range r.cfg.Cluster.Nodes() {
		if n.ID != r.node && n.Status == flowg.StatusAlive && n.Endpoint != "" && r.versionFor(n) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// request sends a signed request and returns the body of a 200 answer.
func (r *core) request(ctx context.Context, peer flowg.Node, path string, body []byte) ([]byte, error) {
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

func (r *core) count(peer string, sent, recvd int) {
	r.trafficMu.Lock()
	r.sent[peer] += uint64(sent)
	r.recvd[peer] += uint64(recvd)
	r.trafficMu.Unlock()
	r.m.bytes.WithLabelValues("sent").Add(float64(sent))
	r.m.bytes.WithLabelValues("received").Add(float64(recvd))
}
