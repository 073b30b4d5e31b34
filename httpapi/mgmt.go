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
		{"GET", "/ready", anyone, "", a.readiness},
		{"GET", "/metrics", anyone, "", metricsHandler.ServeHTTP},
		{"GET", "/cluster/nodes", anyone, "", a.mgmtClusterNodes},
	})
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return mux
}

type readyJSON struct {
	Status   string   `json:"status"`
	Problems []string `json:"problems,omitempty"`
}

// readiness answers /ready: 200 while the node takes traffic; 503 while it
// starts or stops, and while every peer it hears from refuses its requests
// (its clock is off, or its cookie differs): such a node is cut off by its
// own configuration, and a load balancer should send clients to the
// others. A node whose peers are merely down stays ready. The body lists
// the peers that refuse this node, and why.
func (a *API) readiness(w http.ResponseWriter, r *http.Request) {
	if !a.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, readyJSON{Status: "not ready"})
		return
	}
	var out readyJSON
	isolated := false
	if a.cfg.Peers != nil {
		out.Problems, isolated = a.cfg.Peers.Problems()
	}
	if isolated {
		out.Status = "isolated"
		writeJSON(w, http.StatusServiceUnavailable, out)
		return
	}
	out.Status = "ready"
	writeJSON(w, http.StatusOK, out)
}

type slogPrinter struct{ a *API }

func (p slogPrinter) Println(v ...any) { p.a.log.Error("metrics", "err", v) }
