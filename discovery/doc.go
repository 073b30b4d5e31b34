// Package discovery finds the peers a node joins and runs the join loop.
//
// A Source returns peers (a management endpoint, and the node ID when the
// source knows it). The static source is the join flags; the Consul catalog
// and DNS SRV sources plug into the same loop. The loop never imports the
// membership package: it drives whatever implements Cluster.
package discovery
