package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	flowg "github.com/flowg-server/flowg-server"
)

// Settings sync: users, roles, tokens and stream settings are pushed to
// every alive peer as they change, compared with one random peer every few
// seconds (anti-entropy), and replaced with a peer's after a long absence.

// Meta: push at once.

func (r *settingsSync) changed(entries []flowg.MetaEntry) {
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

func (r *settingsSync) pushLoop(ctx context.Context) {
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
func (r *settingsSync) refuse(w http.ResponseWriter, absentSeconds int64) bool {
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

func (r *settingsSync) serveMeta(w http.ResponseWriter, req *http.Request) {
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

func (r *settingsSync) serveDigest(w http.ResponseWriter, req *http.Request) {
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

func (r *settingsSync) serveEntries(w http.ResponseWriter, req *http.Request) {
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

func (r *settingsSync) antiEntropyLoop(ctx context.Context) {
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
func (r *settingsSync) syncWith(ctx context.Context, p flowg.Node) error {
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
func (r *settingsSync) resyncFrom(ctx context.Context, p flowg.Node) error {
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
