package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_http_requests_total", Help: "HTTP requests answered, by server, route and status code.",
		}, []string{"server", "route", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "flowg_http_request_seconds", Help: "Time to answer an HTTP request, by server and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"server", "route"}),
		ingestedRecords: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_ingest_records_total", Help: "Records ingested over the HTTP API.",
		}),
		ingestRejected: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_ingest_rejected_total", Help: "Ingest requests rejected, by reason (stream_name, body, parse, store).",
		}, []string{"reason"}),
		queryRecords: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_query_records_total", Help: "Records returned by queries.",
		}),
		watchOpen: f.NewGauge(prometheus.GaugeOpts{
			Name: "flowg_watch_open", Help: "Live tails open now.",
		}),
		watchDropped: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_watch_lagged_total", Help: "Live tails ended because the client fell behind.",
		}),
		loginThrottled: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_login_throttled_total", Help: "Logins answered 429 because of too many failed logins for the user or from the address.",
		}),
		ingestBusy: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_ingest_busy_total", Help: "Ingest requests answered 429 because --ingest-max-inflight bytes were already in flight.",
		}),
	}
}

// instrument counts and times the requests of one route, with promhttp's
// instrumentation (its writer wrapper keeps Flush, Hijack and the
// deadlines of http.ResponseController working).
func (m *metrics) instrument(server, route string, h http.Handler) http.Handler {
	labels := prometheus.Labels{"server": server, "route": route}
	return promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(labels),
		promhttp.InstrumentHandlerDuration(m.duration.MustCurryWith(labels), h))
}
