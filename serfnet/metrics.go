package serfnet

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	packets  *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	streams  *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	refusals *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		packets: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_gossip_packets_total", Help: "Gossip packets sent and received, by direction (in, out).",
		}, []string{"direction"}),
		bytes: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_gossip_packet_bytes_total", Help: "Bytes of gossip packets sent and received, by direction.",
		}, []string{"direction"}),
		streams: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_gossip_streams_total", Help: "Gossip streams opened, by direction.",
		}, []string{"direction"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_gossip_dropped_packets_total",
			Help: "Gossip packets dropped, by reason (queue_full, oversize, send_failed, refused, inbound_full).",
		}, []string{"reason"}),
		rejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_cluster_rejected_requests_total",
			Help: "Requests to /cluster/* rejected, by reason (unsigned, bad_signature, clock_skew, wrong_node, replay, body_digest, oversize, bad_sender, not_a_member).",
		}, []string{"reason"}),
		refusals: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_cluster_peer_answers_total",
			Help: "Answers of peers to this node's signed requests, by outcome (accepted, clock_offset, cookie_mismatch, wrong_node, not_a_member).",
		}, []string{"outcome"}),
	}
	for _, d := range []string{"in", "out"} {
		m.packets.WithLabelValues(d)
		m.bytes.WithLabelValues(d)
	}
	for _, r := range []string{rejectUnsigned, rejectSignature, rejectClock, rejectWrongNode, rejectReplay} {
		m.rejected.WithLabelValues(r)
	}
	return m
}
