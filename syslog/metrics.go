package syslog

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	received    *prometheus.CounterVec
	stored      prometheus.Counter
	dropped     *prometheus.CounterVec
	parseErrors prometheus.Counter
	connections prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_syslog_received_total", Help: "Syslog messages read, by protocol.",
		}, []string{"protocol"}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowg_syslog_stored_total", Help: "Syslog messages stored.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_syslog_dropped_total",
			Help: "Syslog messages or connections dropped, by reason (origin, oversize, queue_full, connections, client_connections, store, shutdown).",
		}, []string{"reason"}),
		parseErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowg_syslog_parse_errors_total", Help: "Syslog messages stored raw because they did not parse.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowg_syslog_connections", Help: "Open syslog TCP connections.",
		}),
	}
	for _, r := range []string{"origin", "oversize", "queue_full", "connections", "client_connections", "store", "shutdown"} {
		m.dropped.WithLabelValues(r)
	}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.received, m.stored, m.dropped, m.parseErrors, m.connections} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}
