package discovery

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	flowg "github.com/flowg-server/flowg-server"
)

// Source finds peers.
type Source interface {
	// Name names the source in logs and metrics ("static", "consul", "dns").
	Name() string
	// Peers returns the peers the source knows now.
	Peers(ctx context.Context) ([]flowg.Peer, error)
}

// Static is the peer given by the join flags.
type Static struct{ Peer flowg.Peer }

// Name returns "static".
func (Static) Name() string { return "static" }

// Peers returns the configured peer.
func (s Static) Peers(context.Context) ([]flowg.Peer, error) { return []flowg.Peer{s.Peer}, nil }

// Cluster is the membership the loop joins peers into.
type Cluster interface {
	// NodeID is this node's ID.
	NodeID() string
	// IsMember reports whether the peer is an alive member other than this node.
	IsMember(flowg.Peer) bool
	// Join joins through peers and returns how many other nodes answered.
	Join(ctx context.Context, peers []flowg.Peer) (int, error)
}

// Loop joins the peers that the sources find and that are not yet members.
type Loop struct {
	Sources []Source
	Cluster Cluster
	// Interval is how often sources are asked again once joined. Default 30s.
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the wait between tries while no peer
	// could be joined; it doubles from one to the other, with jitter.
	// Defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Run joins until ctx ends; it never stops the node when discovery fails.
func (l *Loop) Run(ctx context.Context) {
	if len(l.Sources) == 0 {
		return
	}
	interval, minB, maxB := l.Interval, l.MinBackoff, l.MaxBackoff
	if interval <= 0 {
		interval = 30 * time.Second
	}
	if minB <= 0 {
		minB = 500 * time.Millisecond
	}
	if maxB <= 0 {
		maxB = 30 * time.Second
	}
	log := l.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "discovery")
	backoff := minB
	lastErr := ""
	for {
		err := l.once(ctx)
		wait := interval
		if err != nil {
			if msg := err.Error(); msg != lastErr {
				log.Warn("cannot join the cluster yet; retrying", "err", err)
				lastErr = msg
			}
			// Jitter spreads the retries of nodes started together.
			wait = backoff/2 + time.Duration(rand.Int64N(int64(backoff)))
			backoff = min(backoff*2, maxB)
		} else {
			if lastErr != "" {
				log.Info("joined the cluster")
			}
			lastErr, backoff = "", minB
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// errNothingJoined is a round in which peers were due but none answered.
var errNothingJoined = errors.New("no peer answered")

// once asks every source, then joins the peers that are neither this node
// nor alive members. A round with nothing to join succeeds.
func (l *Loop) once(ctx context.Context) error {
	seen := map[flowg.Peer]bool{}
	var due []flowg.Peer
	var errs []error
	for _, s := range l.Sources {
		peers, err := s.Peers(ctx)
		if err != nil {
			errs = append(errs, errors.New(s.Name()+": "+err.Error()))
			continue
		}
		for _, p := range peers {
			if seen[p] || p.NodeID == l.Cluster.NodeID() || l.Cluster.IsMember(p) {
				continue
			}
			seen[p] = true
			due = append(due, p)
		}
	}
	if len(due) == 0 {
		return errors.Join(errs...)
	}
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := l.Cluster.Join(jctx, due)
	if n == 0 {
		if err == nil {
			err = errNothingJoined
		}
		return errors.Join(append(errs, err)...)
	}
	return nil
}
