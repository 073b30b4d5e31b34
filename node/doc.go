// Package node runs one flowg-server node: it builds the stores, the
// listeners, the cluster, replication, discovery and the HTTP APIs from a
// Config, starts them in order and stops them in reverse, and holds the
// policies that span them: when an ingest is acknowledged (once a second
// node holds its records), the state directory (node identity, last-seen
// time), the memory budget.
//
// It is the composition root: the only package besides cmd/flowg-server
// that imports several feature packages. cmd/flowg-server keeps flags,
// environment, --version, --health-probe and main.
package node
