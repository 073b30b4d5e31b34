package syslog

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	received    *prometheus.CounterVec
	stored      prometheus.Counter
	dropped     *prometheus.CounterVec
	parseErrors prometheus.Counter
	connections prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		received: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_syslog_received_total", Help: "Syslog messages read, by protocol.",
		}, []string{"protocol"}),
		stored: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_syslog_stored_total", Help: "Syslog messages stored.",
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_syslog_dropped_total",
			Help: "Syslog messages or connections dropped, by reason (origin, oversize, queue_full, connections, client_connections, store, shutdown).",
		}, []string{"reason"}),
		parseErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_syslog_parse_errors_total", Help: "Syslog messages stored raw because they did not parse.",
		}),
		connections: f.NewGauge(prometheus.GaugeOpts{
			Name: "flowg_syslog_connections", Help: "Open syslog TCP connections.",
		}),
	}
	for _, r := range []string{"origin", "oversize", "queue_full", "connections", "client_connections", "store", "shutdown"} {
		m.dropped.WithLabelValues(r)
	}
	return m
}
