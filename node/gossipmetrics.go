package node

import (
	"log/slog"
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	gometricsprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// gossipMetricsOnce guards go-metrics' process-wide sink.
var gossipMetricsOnce sync.Once

// exportGossipMetrics sends memberlist's and Serf's own metrics (probe
// round trips, Lifeguard's health score, message queue depths, push/pull
// and gossip timings) to reg, through go-metrics' Prometheus sink, named
// flowg_memberlist_* and flowg_serf_*. memberlist and Serf emit them only
// to go-metrics' single process-wide sink, so with several nodes in one
// process (tests) the first node's registry gets them all; a node runs
// alone in its process otherwise.
func exportGossipMetrics(reg prometheus.Registerer, log *slog.Logger) {
	gossipMetricsOnce.Do(func() {
		sink, err := gometricsprom.NewPrometheusSinkFrom(gometricsprom.PrometheusOpts{Registerer: reg, Expiration: 2 * time.Minute})
		if err != nil {
			log.Warn("cannot export memberlist's and Serf's metrics", "err", err)
			return
		}
		cfg := gometrics.DefaultConfig("flowg")
		cfg.EnableHostname, cfg.EnableRuntimeMetrics, cfg.EnableServiceLabel = false, false, false
		if _, err := gometrics.NewGlobal(cfg, sink); err != nil {
			log.Warn("cannot export memberlist's and Serf's metrics", "err", err)
		}
	})
}
