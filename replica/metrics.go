package replica

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	bytes          *prometheus.CounterVec
	recordsApplied prometheus.Counter
	metaApplied    prometheus.Counter
	repairs        prometheus.Counter
	resyncs        prometheus.Counter
	incompatible   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_replication_bytes_total", Help: "Replication bytes sent and received (request and answer bodies).",
		}, []string{"direction"}),
		recordsApplied: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_replication_records_applied_total", Help: "Log records taken by other nodes and stored here.",
		}),
		metaApplied: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_replication_meta_applied_total", Help: "User, role, token and settings entries changed here by other nodes.",
		}),
		repairs: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_replication_antientropy_repairs_total", Help: "Entries that anti-entropy brought here after a push missed them.",
		}),
		resyncs: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_replication_resyncs_total", Help: "Times this node replaced its entries with a peer's after a long absence.",
		}),
		incompatible: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_replication_incompatible_peers_total",
			Help: "Times a peer was found to speak no replication version this node speaks (once per peer and range).",
		}),
	}
}

// lagCollector reports the lag per origin when scraped.
type lagCollector struct{ r *Replicator }

var (
	lagRecordsDesc = prometheus.NewDesc("flowg_replication_lag_records", "Records of an origin (a node's log database) that this node does not hold yet.", []string{"origin"}, nil)
	lagSecondsDesc = prometheus.NewDesc("flowg_replication_lag_seconds", "How long this node has been behind an origin's records.", []string{"origin"}, nil)
)

func (c lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagRecordsDesc
	ch <- lagSecondsDesc
}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	// Every member's origin (0 when none is missing), and every other
	// origin this node lacks records of.
	lag := map[string][2]float64{}
	for _, n := range c.r.cfg.Cluster.Nodes() {
		if n.ID != c.r.node {
			lag[originOf(n)] = [2]float64{}
		}
	}
	for _, l := range c.r.Lag() {
		lag[l.Origin] = [2]float64{float64(l.Records), l.Seconds}
	}
	for o, v := range lag {
		ch <- prometheus.MustNewConstMetric(lagRecordsDesc, prometheus.GaugeValue, v[0], o)
		ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, v[1], o)
	}
}
