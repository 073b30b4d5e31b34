package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jpillora/backoff"

	flowg "github.com/flowg-server/flowg-server"
)

// pullBody asks for the records of some origins after the given sequences.
type pullBody struct {
	// Node is the node asking: what it asks for this node's own origin
	// says how much of it that node holds.
	Node   string            `json:"node"`
	After  map[string]uint64 `json:"after"`
	WaitMS int64             `json:"wait_ms"`
}

// servePull answers with the records asked for, up to the batch bounds,
// holding the request for up to wait_ms until there is something to send.
func (r *logPull) servePull(w http.ResponseWriter, req *http.Request) {
	var body pullBody
	if err := json.NewDecoder(req.Body).Decode(&body); err != nil || len(body.After) == 0 || len(body.After) > maxOrigins {
		http.Error(w, "bad pull: want after: {origin: sequence}", http.StatusBadRequest)
		return
	}
	if after, ok := body.After[r.self]; ok && body.Node != "" {
		r.mu.Lock()
		if after > r.peerHolds[body.Node] {
			r.peerHolds[body.Node] = after
			close(r.held)
			r.held = make(chan struct{})
		}
		r.mu.Unlock()
	}
	wait := min(time.Duration(body.WaitMS)*time.Millisecond, time.Minute)
	deadline := time.NewTimer(max(wait, 0))
	defer deadline.Stop()
	origins := make([]string, 0, len(body.After))
	for o := range body.After {
		origins = append(origins, o)
	}
	slices.Sort(origins)
	for {
		changed := r.cfg.Logs.Changed() // before reading, so no commit is missed
		ans := pullAnswer{Heads: r.cfg.Logs.Heads()}
		records, bytes, moved := 0, 0, false
		for _, o := range origins {
			if records >= r.cfg.BatchRecords || bytes >= r.cfg.BatchBytes {
				break
			}
			recs, upTo, err := r.cfg.Logs.ReadOrigin(o, body.After[o], r.cfg.BatchRecords-records, r.cfg.BatchBytes-bytes)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if upTo > body.After[o] {
				moved = true
				ans.Chunks = append(ans.Chunks, chunk{Origin: o, UpTo: upTo, Records: recs})
				records += len(recs)
				for _, rec := range recs {
					bytes += len(rec.Value)
				}
			}
		}
		if moved {
			r.writeAnswer(w, ans)
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			r.writeAnswer(w, ans)
			return
		case <-req.Context().Done():
			return
		}
	}
}

func (r *logPull) writeAnswer(w http.ResponseWriter, ans pullAnswer) {
	b := encodeAnswer(ans)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(b)
}

// puller is the pull loop of one peer, as that peer was when it started.
type puller struct {
	cancel           context.CancelFunc
	endpoint, origin string
}

// reconcilePullers runs one pull loop per alive peer, started again when
// the peer comes back at another endpoint or with another origin (an
// empty disk).
func (r *logPull) reconcilePullers(ctx context.Context, wg *sync.WaitGroup) {
	alive := map[string]flowg.Node{}
	for _, p := range r.alivePeers() {
		alive[p.ID] = p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, pl := range r.pullers {
		if p, ok := alive[id]; !ok || p.Endpoint != pl.endpoint || originOf(p) != pl.origin {
			pl.cancel()
			delete(r.pullers, id)
		}
	}
	for id, p := range alive {
		if _, ok := r.pullers[id]; ok || ctx.Err() != nil {
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		r.pullers[id] = puller{cancel: cancel, endpoint: p.Endpoint, origin: originOf(p)}
		wg.Go(func() { r.pullLoop(pctx, p) })
	}
}

// pullLoop pulls from one peer its own records and those of origins that
// are not alive, applying each batch before asking for the next.
func (r *logPull) pullLoop(ctx context.Context, p flowg.Node) {
	retry := &backoff.Backoff{Min: 200 * time.Millisecond, Max: 5 * time.Second, Factor: 2, Jitter: true}
	failing := false
	// The first pull is answered at once, so that this node learns what
	// the peer holds of every origin without waiting for it to take
	// something new.
	wait := time.Duration(0)
	for ctx.Err() == nil {
		err := r.pullOnce(ctx, p, wait)
		if err == nil {
			if failing {
				r.log.Info("pulling records from the peer again", "peer", p.ID)
			}
			failing, wait = false, r.cfg.PullWait
			retry.Reset()
			continue
		}
		if ctx.Err() != nil {
			return
		}
		// One line when it starts failing, one when it recovers: not one
		// per try.
		if !failing {
			r.log.Warn("cannot pull records from a peer; retrying", "peer", p.ID, "err", err)
		}
		failing = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry.Duration()):
		}
	}
}

// origins this node asks peer p for: p's own, and every other origin that
// no alive member writes: a member's that is failed or gone, or one a peer
// said holds more than this node has (the former self of a node that came
// back with an empty disk, say). Its records may live on only in its
// peers, and no peer's answer may have said yet how many of them it holds.
func (r *logPull) originsFor(p flowg.Node) map[string]uint64 {
	heads := r.cfg.Logs.Heads()
	own := originOf(p)
	after := map[string]uint64{own: heads[own]}
	r.mu.Lock()
	defer r.mu.Unlock()
	for o := range r.relaying {
		if o != own {
			after[o] = heads[o]
		}
	}
	return after
}

// relayed are the origins other than this node's that no alive member
// writes and whose records this node may lack: those of members that are
// not alive, and those a peer said holds more than this node does.
func (r *logPull) relayed() map[string]bool {
	out := map[string]bool{}
	alive := map[string]bool{}
	for _, n := range r.cfg.Cluster.Nodes() {
		if n.Status == flowg.StatusAlive {
			alive[originOf(n)] = true
		} else {
			out[originOf(n)] = true
		}
	}
	heads := r.cfg.Logs.Heads()
	r.mu.Lock()
	defer r.mu.Unlock()
	for o, h := range r.knownHeads {
		if h > heads[o] {
			out[o] = true
		}
	}
	for o := range alive {
		delete(out, o)
	}
	delete(out, r.self)
	return out
}

// noteRelayed works out the origins to relay (every 500 ms, not per pull)
// and restarts the pulls in flight when one is to be relayed that was not:
// a pull already waiting for its peer's own records would not ask for it
// until that peer takes new ones.
func (r *logPull) noteRelayed() {
	now := r.relayed()
	r.mu.Lock()
	defer r.mu.Unlock()
	grew := false
	for o := range now {
		if !r.relaying[o] {
			grew = true
		}
	}
	r.relaying = now
	if grew {
		r.relayGrew(errRelayChanged)
		r.relayCtx, r.relayGrew = context.WithCancelCause(context.Background())
	}
}

var errRelayChanged = errors.New("origins to relay changed")

func (r *logPull) pullOnce(ctx context.Context, p flowg.Node, wait time.Duration) error {
	r.mu.Lock()
	relay := r.relayCtx // before the origins are read, so no change is missed
	r.mu.Unlock()
	body, _ := json.Marshal(pullBody{Node: r.node, After: r.originsFor(p), WaitMS: wait.Milliseconds()})
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(relay, func() { cancel(errRelayChanged) })()
	rctx, cancelT := context.WithTimeout(rctx, r.cfg.PullWait+30*time.Second)
	defer cancelT()
	b, err := r.request(rctx, p, PathPull, body)
	if err != nil {
		if errors.Is(context.Cause(rctx), errRelayChanged) {
			return nil // ask again, for the new origins too
		}
		return err
	}
	ans, err := decodeAnswer(b)
	if err != nil {
		return err
	}
	r.noteHeads(ans.Heads)
	for _, c := range ans.Chunks {
		if c.Origin == r.self {
			continue
		}
		n, err := r.cfg.Logs.ApplyOrigin(ctx, c.Origin, c.Records, c.UpTo)
		if err != nil {
			return fmt.Errorf("cannot apply %d records of %s up to %d: %w", len(c.Records), c.Origin, c.UpTo, err)
		}
		r.m.recordsApplied.Add(float64(n))
	}
	r.updateLag()
	return nil
}

// noteHeads keeps the highest head any peer reported per origin.
func (r *logPull) noteHeads(heads map[string]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for o, h := range heads {
		if o != r.self && h > r.knownHeads[o] {
			r.knownHeads[o] = h
		}
	}
}

// updateLag notes, per origin, since when this node is behind it.
func (r *logPull) updateLag() {
	heads := r.cfg.Logs.Heads()
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for o, known := range r.knownHeads {
		if heads[o] >= known {
			delete(r.behindSince, o)
		} else if _, ok := r.behindSince[o]; !ok {
			r.behindSince[o] = now
		}
	}
}

// Lag lists the origins whose records this node does not all hold yet,
// and by how much, as far as the peers have said.
func (r *logPull) Lag() []flowg.OriginLag {
	heads := r.cfg.Logs.Heads()
	now := time.Now()
	r.mu.Lock()
	var out []flowg.OriginLag
	for o, known := range r.knownHeads {
		if heads[o] >= known {
			continue
		}
		l := flowg.OriginLag{Origin: o, Records: known - heads[o]}
		if since, ok := r.behindSince[o]; ok {
			l.Seconds = now.Sub(since).Seconds()
		}
		out = append(out, l)
	}
	r.mu.Unlock()
	if len(out) == 0 {
		return nil // every query asks: no look at the members then
	}
	writers := map[string]string{} // origin → the member writing it
	for _, n := range r.cfg.Cluster.Nodes() {
		writers[originOf(n)] = n.ID
	}
	for i, l := range out {
		if out[i].NodeID = writers[l.Origin]; out[i].NodeID == "" {
			out[i].NodeID, _, _ = strings.Cut(l.Origin, "@") // a former self
		}
	}
	slices.SortFunc(out, func(a, b flowg.OriginLag) int { return strings.Compare(a.Origin, b.Origin) })
	return out
}

// Nodes is the cluster's view with each node's replication state added.
func (r *Replicator) Nodes() []flowg.Node {
	nodes := r.cfg.Cluster.Nodes()
	lag := map[string]flowg.OriginLag{}
	for _, l := range r.Lag() {
		lag[l.Origin] = l
	}
	r.trafficMu.Lock()
	defer r.trafficMu.Unlock()
	for i, n := range nodes {
		if n.ID == r.node {
			continue
		}
		l := lag[originOf(n)]
		nodes[i].Replication = &flowg.NodeReplication{
			LagRecords: l.Records, LagSeconds: l.Seconds,
			BytesSent: r.sent[n.ID], BytesReceived: r.recvd[n.ID],
		}
	}
	return nodes
}

// copies splits the alive peers into those that hold this node's records
// up to seq (as their pulls say) and those behind, and returns a channel
// closed when any peer says it holds more.
func (r *logPull) copies(seq uint64) (holding, behind []string, more <-chan struct{}) {
	peers := r.alivePeers()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range peers {
		if r.peerHolds[p.ID] >= seq {
			holding = append(holding, p.ID)
		} else {
			behind = append(behind, p.ID)
		}
	}
	return holding, behind, r.held
}

// WaitCopied waits until another alive node holds this node's records up
// to seq, at most timeout; it reports whether one does. With no other
// alive node it returns false at once.
func (r *logPull) WaitCopied(ctx context.Context, seq uint64, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		holding, behind, more := r.copies(seq)
		if len(holding) > 0 {
			return true
		}
		if len(behind) == 0 {
			return false
		}
		select {
		case <-more:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// HandOver waits until every alive peer holds every record this node took,
// or ctx ends: on a graceful stop, so that no acknowledged record waits for
// this node to come back.
func (r *logPull) HandOver(ctx context.Context) error {
	head := r.cfg.Logs.Heads()[r.self] // ingest has stopped: no record comes after
	for {
		_, behind, more := r.copies(head)
		if len(behind) == 0 {
			return nil
		}
		select {
		case <-more:
		case <-ctx.Done():
			return fmt.Errorf("peers %v do not hold every record of this node yet: %w", behind, ctx.Err())
		case <-time.After(time.Second): // a peer may have left meanwhile
		}
	}
}
