// Package store keeps flowg-server's data in three BadgerDB databases: the
// log database (records, their indexes and per-stream usage), the auth
// database (users, roles and tokens) and the config database (stream
// settings). It owns their opening and closing, the key layout, queries,
// retention and value-log garbage collection.
//
// # Log keys
//
// A record of a small request (or replicated batch) is written as a row:
//
//	'd' stream 0x00 ts(8, big endian ns) origin(4) seq(8)
//
// so that the records of one stream in a time window are one range scan,
// in either direction; origin is the local number of the database that
// took the record and seq that database's write sequence. Each indexed
// field adds
//
//	'x' stream 0x00 uvarint(len f) f uvarint(len v) v ts(8) origin(4) seq(8)
//
// with an empty value, 'o' origin seq lists each origin's rows in the order
// it took them, and each stream has a usage entry 's' stream. All writes go
// through one writer goroutine that groups concurrent requests into one
// transaction (group commit): a request is acknowledged only once the
// transaction holding it is committed, and sequence numbers follow commit
// order.
//
// A commit with 256 records or more of a stream writes them straight into
// blocks (write.go), and in the background the sealer (seal.go) moves
// rows, origin by origin, into blocks (block.go): up to 2,048 records of a
// stream in ID order, stored column by column and compressed under
//
//	'b' stream 0x00 minID(20) maxTs(8)
//
// with one index entry per indexed value per block ('y', like 'x' with the
// block's name in place of a record ID), per-column blooms of values and
// words, and a round 'r' origin last per seal step or direct commit saying
// which blocks hold the origin's records from first to last, which
// replication reads; rows and rounds never cover the same sequence. Readers merge rows
// and blocks (merge.go); retention and purges rewrite the blocks they cut.
// docs/storage.md tells the design and what it costs.
package store
