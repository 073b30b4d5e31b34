package flowg

// Node is one member of the cluster as the cluster view reports it.
type Node struct {
	ID       string            `json:"node-id"`
	Endpoint string            `json:"endpoint"`
	Status   string            `json:"status"`
	HTTPAddr string            `json:"http-addr,omitempty"`
	Syslog   string            `json:"syslog-addr,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
	// Replication is how this node's copy of that node's records and its
	// traffic with it stand; nil for this node itself.
	Replication *NodeReplication `json:"replication,omitempty"`
}

// NodeReplication is the replication between this node and another.
type NodeReplication struct {
	// LagRecords and LagSeconds are how far behind that node's own records
	// this node is.
	LagRecords uint64  `json:"lag-records"`
	LagSeconds float64 `json:"lag-seconds"`
	// BytesSent and BytesReceived count replication traffic with it.
	BytesSent     uint64 `json:"bytes-sent"`
	BytesReceived uint64 `json:"bytes-received"`
}

// Peer is a node to join, as a discovery source names it: its management
// endpoint URL, and its node ID when the source knows it.
type Peer struct {
	NodeID   string
	Endpoint string
}
