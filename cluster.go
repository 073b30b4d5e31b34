package flowg

import (
	"fmt"
	"regexp"
)

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

// Member tags: what a node tells the others about itself through Serf.
const (
	// TagEndpoint is the URL of the node's management port.
	TagEndpoint = "endpoint"
	// TagHTTP is the address of the node's public API.
	TagHTTP = "http"
	// TagSyslog is the address of the node's syslog listener.
	TagSyslog = "syslog"
)

var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidateNodeID checks that id is a legal node ID (also used for cluster
// and Consul service names): 1 to 64 letters, digits, '_', '.' and '-',
// starting with a letter or digit.
func ValidateNodeID(id string) error {
	if !nodeIDRE.MatchString(id) {
		return fmt.Errorf("%q: use 1 to 64 letters, digits, '_', '.' and '-', starting with a letter or digit", id)
	}
	return nil
}
