// Package httpapi serves flowg-server's two HTTP surfaces: the public API
// under /api/v1 (login, ingest, query, live tail, streams, users, roles,
// tokens, the cluster view, and its OpenAPI document) and the management
// API (/health, /ready, /metrics, /cluster/*).
//
// It declares the interfaces it consumes (LogStore, AuthStore, ClusterView)
// and imports no other feature package; cmd/flowg-server supplies them.
package httpapi
