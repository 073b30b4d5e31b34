package mesh

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	denied         *prometheus.CounterVec
	rotations      *prometheus.CounterVec
	leafExpiry     *prometheus.GaugeVec
	staleDecisions prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		denied: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_mesh_denied_total",
			Help: "Connections refused on a Connect port, by service and reason (no_certificate, untrusted, not_spiffe, trust_domain, intention, authorize_error, identity: not the service expected).",
		}, []string{"service", "reason"}),
		rotations: f.NewCounterVec(prometheus.CounterOpts{
			Name: "flowg_mesh_certificate_changes_total", Help: "Leaf certificates renewed and CA root sets changed, taken without a restart.",
		}, []string{"kind"}),
		leafExpiry: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "flowg_mesh_leaf_valid_before_seconds", Help: "Unix time the service's current leaf certificate expires at.",
		}, []string{"service"}),
		staleDecisions: f.NewCounter(prometheus.CounterOpts{
			Name: "flowg_mesh_stale_authorizations_total", Help: "Connections admitted on a cached intention decision because Consul did not answer.",
		}),
	}
}
