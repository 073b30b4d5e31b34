package httpapi

import (
	"net/http"

	flowg "github.com/flowg-server/flowg-server"
)

// The cluster as each API names it. The management API keeps FlowG's
// names (node-id, endpoint, http-addr: peers and tools read them); the
// public API speaks snake_case like the rest of /api/v1, and until the
// next release also carries the former names (node-id, http-addr,
// syslog-addr, lag-records, lag-seconds, bytes-sent, bytes-received), so
// that clients reading them keep working.

type mgmtNode struct {
	ID          string            `json:"node-id"`
	Endpoint    string            `json:"endpoint"`
	Status      flowg.NodeStatus  `json:"status"`
	HTTPAddr    string            `json:"http-addr,omitempty"`
	Syslog      string            `json:"syslog-addr,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Replication *mgmtReplication  `json:"replication,omitempty"`
}

type mgmtReplication struct {
	LagRecords    uint64  `json:"lag-records"`
	LagSeconds    float64 `json:"lag-seconds"`
	BytesSent     uint64  `json:"bytes-sent"`
	BytesReceived uint64  `json:"bytes-received"`
}

type publicNode struct {
	ID          string             `json:"node_id"`
	Endpoint    string             `json:"endpoint"`
	Status      flowg.NodeStatus   `json:"status"`
	HTTPAddr    string             `json:"http_addr,omitempty"`
	Syslog      string             `json:"syslog_addr,omitempty"`
	Tags        map[string]string  `json:"tags,omitempty"`
	Replication *publicReplication `json:"replication,omitempty"`

	// Former names, kept for one release.
	OldID       string `json:"node-id"`
	OldHTTPAddr string `json:"http-addr,omitempty"`
	OldSyslog   string `json:"syslog-addr,omitempty"`
}

type publicReplication struct {
	LagRecords    uint64  `json:"lag_records"`
	LagSeconds    float64 `json:"lag_seconds"`
	BytesSent     uint64  `json:"bytes_sent"`
	BytesReceived uint64  `json:"bytes_received"`

	mgmtReplication // the former names, kept for one release
}

// originLagJSON is an entry of a query answer's "behind".
type originLagJSON struct {
	Origin  string  `json:"origin"`
	NodeID  string  `json:"node_id"`
	Records uint64  `json:"records"`
	Seconds float64 `json:"seconds"`
	OldID   string  `json:"node-id"` // the former name, kept for one release
}

func lagJSON(lags []flowg.OriginLag) []originLagJSON {
	var out []originLagJSON
	for _, l := range lags {
		out = append(out, originLagJSON{Origin: l.Origin, NodeID: l.NodeID, Records: l.Records, Seconds: l.Seconds, OldID: l.NodeID})
	}
	return out
}

// clusterNodes serves the cluster view: FlowG's names on the management
// port, snake_case (and the former names) on the public API.
func (a *API) clusterNodes(w http.ResponseWriter, r *http.Request) { a.writeNodes(w, true) }

func (a *API) mgmtClusterNodes(w http.ResponseWriter, r *http.Request) { a.writeNodes(w, false) }

func (a *API) writeNodes(w http.ResponseWriter, public bool) {
	nodes := a.cfg.Cluster.Nodes()
	if !public {
		out := make([]mgmtNode, 0, len(nodes))
		for _, n := range nodes {
			m := mgmtNode{ID: n.ID, Endpoint: n.Endpoint, Status: n.Status, HTTPAddr: n.HTTPAddr, Syslog: n.Syslog, Tags: n.Tags}
			if rep := n.Replication; rep != nil {
				m.Replication = &mgmtReplication{rep.LagRecords, rep.LagSeconds, rep.BytesSent, rep.BytesReceived}
			}
			out = append(out, m)
		}
		writeJSON(w, http.StatusOK, map[string]any{"nodes": out})
		return
	}
	out := make([]publicNode, 0, len(nodes))
	for _, n := range nodes {
		p := publicNode{ID: n.ID, Endpoint: n.Endpoint, Status: n.Status, HTTPAddr: n.HTTPAddr, Syslog: n.Syslog, Tags: n.Tags,
			OldID: n.ID, OldHTTPAddr: n.HTTPAddr, OldSyslog: n.Syslog}
		if rep := n.Replication; rep != nil {
			m := mgmtReplication{rep.LagRecords, rep.LagSeconds, rep.BytesSent, rep.BytesReceived}
			p.Replication = &publicReplication{rep.LagRecords, rep.LagSeconds, rep.BytesSent, rep.BytesReceived, m}
		}
		out = append(out, p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"nodes": out, "self": a.self()})
}

// selfJSON is what the answering node says of itself: whether its peers
// refuse it and why, which origins it is behind on, where it finds peers.
type selfJSON struct {
	NodeID    string          `json:"node_id,omitempty"`
	Status    string          `json:"status"`
	Problems  []string        `json:"problems,omitempty"`
	Behind    []originLagJSON `json:"behind,omitempty"`
	Discovery []string        `json:"discovery"`
}

func (a *API) self() selfJSON {
	s := selfJSON{NodeID: a.cfg.Self, Status: "ready", Discovery: a.cfg.Discovery}
	if s.Discovery == nil {
		s.Discovery = []string{}
	}
	if a.cfg.Peers != nil {
		var isolated bool
		if s.Problems, isolated = a.cfg.Peers.Problems(); isolated {
			s.Status = "isolated"
		}
	}
	if a.cfg.Replication != nil {
		s.Behind = lagJSON(a.cfg.Replication.Lag())
	}
	return s
}
