// Package mesh makes a node a Consul Connect native service: it holds the
// leaf certificates of the node's services and the mesh's CA roots, kept
// current with blocking queries to the local agent, and builds the TLS
// configurations that present those leaves and admit only clients whose
// certificate chains to the current roots, names a SPIFFE service of the
// same trust domain, and is allowed by Consul's intentions.
//
// Consul's own native library (github.com/hashicorp/consul/connect) does
// the same, but it lives in Consul's server module, whose dependencies
// dwarf this binary's; the part written here is what that library does
// with hashicorp/consul/api: watch /v1/agent/connect/ca/{roots,leaf},
// verify a chain, parse a SPIFFE URI, call /v1/agent/connect/authorize.
package mesh
