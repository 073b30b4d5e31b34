package serfnet

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	packets  *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	streams  *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_gossip_packets_total", Help: "Gossip packets sent and received, by direction (in, out).",
		}, []string{"direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_gossip_packet_bytes_total", Help: "Bytes of gossip packets sent and received, by direction.",
		}, []string{"direction"}),
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_gossip_streams_total", Help: "Gossip streams opened, by direction.",
		}, []string{"direction"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_gossip_dropped_packets_total",
			Help: "Gossip packets dropped, by reason (queue_full, oversize, send_failed, refused, inbound_full).",
		}, []string{"reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_cluster_rejected_requests_total",
			Help: "Requests to /cluster/* rejected, by reason (unauthenticated, oversize, bad_sender).",
		}, []string{"reason"}),
	}
	for _, d := range []string{"in", "out"} {
		m.packets.WithLabelValues(d)
		m.bytes.WithLabelValues(d)
	}
	m.rejected.WithLabelValues("unauthenticated")
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.packets, m.bytes, m.streams, m.dropped, m.rejected}
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range m.collectors() {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}
