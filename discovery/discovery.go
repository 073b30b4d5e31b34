package discovery

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jpillora/backoff"
	"github.com/prometheus/client_golang/prometheus"

	flowg "github.com/flowg-server/flowg-server"
)

// Source finds peers.
type Source interface {
	// Name names the source in logs and metrics ("static", "consul", "dns").
	Name() string
	// Peers returns the peers the source knows now.
	Peers(ctx context.Context) ([]flowg.Peer, error)
}

// Notifier is a source that says when its answer changed (Consul's
// blocking queries), so the loop asks again at once, not on its interval.
type Notifier interface {
	Changed() <-chan struct{}
}

// Refresher is a source whose answer expires sooner than the loop's
// interval (DNS records with a short TTL).
type Refresher interface {
	// Refresh is how long the last answer stays good; 0 means no opinion.
	Refresh() time.Duration
}

// Cluster is the membership the loop joins peers into.
type Cluster interface {
	// IsSelf reports whether the peer is this node, by node ID or address.
	IsSelf(flowg.Peer) bool
	// IsMember reports whether the peer is an alive member other than this node.
	IsMember(flowg.Peer) bool
	// Join joins through peers and returns how many other nodes answered.
	Join(ctx context.Context, peers []flowg.Peer) (int, error)
}

// Loop joins the peers that the sources find and that are not yet members.
type Loop struct {
	Sources []Source
	Cluster Cluster
	// Interval is how often sources are asked again once joined, unless a
	// Refresher asks sooner or a Notifier says its answer changed.
	// Default 30s.
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the wait between tries while no peer
	// could be joined; it doubles from one to the other, with jitter.
	// Defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
	// Registerer receives flowg_discovery_source_up{source} (1 while the
	// source answers) and flowg_discovery_joined (1 once a round joins or
	// finds nothing to join); nil registers nothing.
	Registerer prometheus.Registerer

	last map[string][]flowg.Peer // each source's last good answer
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
	up := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "flowg_discovery_source_up", Help: "1 while a discovery source answers, 0 while it fails.",
	}, []string{"source"})
	joined := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "flowg_discovery_joined", Help: "1 when the last join round reached a peer or had nothing to join.",
	})
	if l.Registerer != nil {
		if err := errors.Join(l.Registerer.Register(up), l.Registerer.Register(joined)); err != nil {
			log.Error("cannot register discovery metrics", "err", err)
		}
	}
	// Jitter spreads the retries of nodes started together.
	retry := &backoff.Backoff{Min: minB, Max: maxB, Factor: 2, Jitter: true}
	failing := map[string]bool{} // per source, and "join" for joining itself
	l.last = map[string][]flowg.Peer{}
	changed := make(chan struct{}, 1)
	for _, s := range l.Sources {
		if n, ok := s.(Notifier); ok {
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-n.Changed():
						select {
						case changed <- struct{}{}:
						default:
						}
					}
				}
			}()
		}
	}
	report := func(name string, err error) {
		switch {
		case err != nil && !failing[name]:
			log.Warn("discovery source failing; keeping the cluster as it is", "source", name, "err", err)
		case err == nil && failing[name]:
			log.Info("discovery source answers again", "source", name)
		}
		failing[name] = err != nil
		if err != nil {
			up.WithLabelValues(name).Set(0)
		} else {
			up.WithLabelValues(name).Set(1)
		}
	}
	for {
		srcErrs, joinErr := l.once(ctx)
		for _, s := range l.Sources {
			report(s.Name(), srcErrs[s.Name()])
		}
		wait := interval
		for _, s := range l.Sources {
			if r, ok := s.(Refresher); ok && r.Refresh() > 0 {
				wait = min(wait, max(r.Refresh(), time.Second))
			}
		}
		if joinErr != nil {
			if !failing["join"] {
				log.Warn("cannot join the cluster yet; retrying", "err", joinErr)
			}
			failing["join"] = true
			joined.Set(0)
			wait = retry.Duration()
		} else {
			if failing["join"] {
				log.Info("joined the cluster")
			}
			failing["join"] = false
			retry.Reset()
			joined.Set(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(wait):
		}
	}
}

// errNothingJoined is a round in which peers were due but none answered.
var errNothingJoined = errors.New("no peer answered")

// once asks every source, then joins the peers that are neither this node
// nor alive members; a failing source counts with its last good answer.
// It returns each failing source's error, and the join's error when peers
// were due and none answered.
func (l *Loop) once(ctx context.Context) (map[string]error, error) {
	seen := map[flowg.Peer]bool{}
	var due []flowg.Peer
	srcErrs := map[string]error{}
	for _, s := range l.Sources {
		peers, err := s.Peers(ctx)
		if err != nil {
			srcErrs[s.Name()] = err
			peers = l.last[s.Name()]
		} else {
			l.last[s.Name()] = peers
		}
		for _, p := range peers {
			if seen[p] || l.Cluster.IsSelf(p) || l.Cluster.IsMember(p) {
				continue
			}
			seen[p] = true
			due = append(due, p)
		}
	}
	if len(due) == 0 {
		return srcErrs, nil
	}
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := l.Cluster.Join(jctx, due)
	if n == 0 {
		if err == nil {
			err = errNothingJoined
		}
		return srcErrs, err
	}
	return srcErrs, nil
}
