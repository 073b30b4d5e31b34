package flowg

// Node is one member of the cluster as the cluster view reports it.
type Node struct {
	ID       string            `json:"node-id"`
	Endpoint string            `json:"endpoint"`
	Status   string            `json:"status"`
	HTTPAddr string            `json:"http-addr,omitempty"`
	Syslog   string            `json:"syslog-addr,omitempty"`
	Tags     map[string]string `json:"tags,omitempty"`
}

// Peer is a node to join, as a discovery source names it: its management
// endpoint URL, and its node ID when the source knows it.
type Peer struct {
	NodeID   string
	Endpoint string
}
