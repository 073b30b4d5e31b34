package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Management returns the handler of the management API: /health (the
// process serves), /ready (the stores are open and the node takes traffic),
// /metrics and GET /cluster/nodes. extra mounts more routes, such as the
// cluster transport's, on the same mux.
func (a *API) Management(extra map[string]http.Handler) http.Handler {
	g := a.cfg.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	metricsHandler := promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slogPrinter{a}})
	mux := a.mount("mgmt", []route{
		{"GET", "/health", anyone, "", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{"GET", "/ready", anyone, "", func(w http.ResponseWriter, r *http.Request) {
			if !a.ready.Load() {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		}},
		{"GET", "/metrics", anyone, "", metricsHandler.ServeHTTP},
		{"GET", "/cluster/nodes", anyone, "", a.clusterNodes},
	})
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return mux
}

type slogPrinter struct{ a *API }

func (p slogPrinter) Println(v ...any) { p.a.log.Error("metrics", "err", v) }
