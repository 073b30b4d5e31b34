// Package store keeps flowg-server's data in three BadgerDB databases: the
// log database (records, their indexes and per-stream usage), the auth
// database (users, roles and tokens) and the config database (stream
// settings). It owns their opening and closing, the key layout, queries,
// retention and value-log garbage collection.
//
// # Log keys
//
// A record lives under
//
//	'd' stream 0x00 ts(8, big endian ns) seq(8)
//
// so that the records of one stream in a time window are one range scan,
// in either direction. seq is this database's own write sequence, which
// keeps records of the same nanosecond apart. Each indexed field adds
//
//	'x' stream 0x00 uvarint(len f) f uvarint(len v) v ts(8) seq(8)
//
// with an empty value, and each stream has a usage entry 's' stream. All
// writes go through one writer goroutine that groups concurrent requests into
// one transaction (group commit): a request is acknowledged only once the
// transaction holding it is committed, and sequence numbers follow commit
// order.
package store
