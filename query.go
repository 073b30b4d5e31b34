package flowg

import (
	"time"

	"github.com/flowg-server/flowg-server/filter"
)

// Query selects records of one stream.
type Query struct {
	Stream string
	// From and To bound the records' timestamps: From <= t < To. A zero
	// From starts at the oldest record, a zero To ends at the newest.
	From, To time.Time
	// Filter selects records; nil selects all.
	Filter *filter.Filter
	// Limit is the most records a page holds; 0 means 100.
	Limit int
	// Cursor continues after the last record of a previous page.
	Cursor string
	// Ascending returns the oldest records first; the default is newest first.
	Ascending bool
}

// ScanOptions bound and shape a scan: a read of every record of a window
// that matches a filter, for a question about them.
type ScanOptions struct {
	// MaxScan bounds the records and index entries read; past it the scan
	// fails with ErrLimit.
	MaxScan int64
	// Workers is the number of parts of the window read at once.
	Workers int
	// Fields, unless AllFields, are the only fields the caller reads (the
	// filter's are added): the others are not decoded, and a question that
	// needs none is answered from keys alone where it can be.
	Fields    []string
	AllFields bool
	// Newest, when not zero, reads newest first and stops after that many
	// matching records (a sample of the latest).
	Newest int
	// VisitBatch, when set, is given the matching records the store holds
	// in columns (its sealed blocks) a batch at a time, instead of one by
	// one through visit: a question that counts by fields of few values
	// counts codes rather than strings.
	VisitBatch func(part int, b Batch) error
}

// Batch is matching records of a scan given at once, as columns. It is
// valid only during the call it is given to.
type Batch interface {
	// Len is the number of records, which are in time order.
	Len() int
	// UnixNano is record i's timestamp in nanoseconds since the epoch.
	UnixNano(i int) int64
	// Dict gives field as a dictionary: its values and, per record, 0 when
	// the record lacks the field or k for values[k-1]; ok is false when the
	// batch does not hold the field that way (Value reads it then).
	Dict(field string) (values []string, codes []byte, ok bool)
	// Value is record i's value of field.
	Value(field string, i int) (string, bool)
}

// Page is one page of a query's answer.
type Page struct {
	Records []Record
	// NextCursor continues the query; empty on the last page.
	NextCursor string
	// Scanned is the number of records and index entries read.
	Scanned int
}

// Subscription receives the records committed to one stream after it began,
// batch by batch, in commit order.
type Subscription interface {
	// Records yields batches; it is closed when the subscription ends: by
	// Close, by shutdown, or because the reader fell behind.
	Records() <-chan []Record
	// Lagged reports, once Records is closed, whether the subscription
	// ended because its reader fell behind.
	Lagged() bool
	// Close ends the subscription; it is safe to call more than once.
	Close()
}
