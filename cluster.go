package flowg

import (
	"fmt"
	"regexp"
)

// Node is one member of the cluster as the cluster view reports it. The
// APIs that serve it name its fields (httpapi).
type Node struct {
	ID       string
	Endpoint string
	Status   NodeStatus
	HTTPAddr string
	Syslog   string
	Tags     map[string]string
	// Replication is how this node's copy of that node's records and its
	// traffic with it stand; nil for this node itself.
	Replication *NodeReplication
}

// NodeStatus is how the cluster sees a member.
type NodeStatus string

// The statuses of a member.
const (
	// StatusAlive answers probes.
	StatusAlive NodeStatus = "alive"
	// StatusSuspect missed probes; it is failed unless it refutes soon.
	StatusSuspect NodeStatus = "suspect"
	// StatusFailed stopped answering.
	StatusFailed NodeStatus = "failed"
	// StatusLeft left gracefully.
	StatusLeft NodeStatus = "left"
	// StatusUnknown is anything else.
	StatusUnknown NodeStatus = "unknown"
)

// NodeReplication is the replication between this node and another.
type NodeReplication struct {
	// LagRecords and LagSeconds are how far behind that node's own records
	// this node is.
	LagRecords uint64
	LagSeconds float64
	// BytesSent and BytesReceived count replication traffic with it.
	BytesSent     uint64
	BytesReceived uint64
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
