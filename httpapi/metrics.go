package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	ingestedRecords prometheus.Counter
	ingestRejected  *prometheus.CounterVec
	queryRecords    prometheus.Counter
	watchOpen       prometheus.Gauge
	watchDropped    prometheus.Counter
	loginThrottled  prometheus.Counter
	ingestBusy      prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_http_requests_total", Help: "HTTP requests answered, by server, route and status code.",
		}, []string{"server", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flowg_http_request_seconds", Help: "Time to answer an HTTP request, by server and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"server", "route"}),
		ingestedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowg_ingest_records_total", Help: "Records ingested over the HTTP API.",
		}),
		ingestRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_ingest_rejected_total", Help: "Ingest requests rejected, by reason (stream_name, body, parse, store).",
		}, []string{"reason"}),
		queryRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowg_query_records_total", Help: "Records returned by queries.",
		}),
		watchOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowg_watch_open", Help: "Live tails open now.",
		}),
		watchDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowg_watch_lagged_total", Help: "Live tails ended because the client fell behind.",
		}),
		loginThrottled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowg_login_throttled_total", Help: "Logins answered 429 because of too many failed logins for the user or from the address.",
		}),
		ingestBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flowg_ingest_busy_total", Help: "Ingest requests answered 429 because --ingest-max-inflight bytes were already in flight.",
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	var errs []error
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.ingestedRecords, m.ingestRejected, m.queryRecords, m.watchOpen, m.watchDropped, m.loginThrottled, m.ingestBusy} {
		errs = append(errs, r.Register(c))
	}
	return errors.Join(errs...)
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the Flusher and deadlines.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// instrument counts and times the requests of one route.
func (m *metrics) instrument(server, route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		m.requests.WithLabelValues(server, route, strconv.Itoa(rec.code)).Inc()
		m.duration.WithLabelValues(server, route).Observe(time.Since(start).Seconds())
	})
}
