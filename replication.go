package flowg

// MetaEntry is one versioned entry of the auth or config database as it
// travels between nodes. Value is the stored form: the version (a hybrid
// logical clock timestamp and the node that wrote it), a tombstone flag and
// the payload.
type MetaEntry struct {
	DB    string
	Key   string
	Value []byte
}

// ReplRecord is one log record as it travels between nodes: its stream,
// timestamp (Unix nanoseconds), the sequence number its origin gave it, and
// its fields in the store's encoding.
type ReplRecord struct {
	Stream string
	TS     uint64
	Seq    uint64
	Value  []byte
}

// OriginLag is how far this node is behind one origin's records. An
// origin is the log database of one node: its node ID, and for databases
// made by this version "@" and a random name (a node that comes back with
// an empty disk writes under a new origin).
type OriginLag struct {
	Origin  string
	NodeID  string
	Records uint64
	Seconds float64
}
