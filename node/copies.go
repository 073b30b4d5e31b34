package node

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	flowg "github.com/flowg-server/flowg-server"
)

// Appender is what the acknowledgement policy needs of the log store.
type Appender interface {
	Append(ctx context.Context, stream string, recs []flowg.Record) error
	// Head is the last sequence number this node's log database gave.
	Head() uint64
}

// Copier says when another node holds this node's records up to a head.
type Copier interface {
	// WaitCopied reports whether another alive node held the records up to
	// head within timeout; false at once when no other node is alive.
	WaitCopied(ctx context.Context, head uint64, timeout time.Duration) bool
}

// CopiedAppender is the acknowledgement policy of every ingest path that
// acknowledges (HTTP, syslog over TCP): an ingest is answered once its
// records are committed here and, when another node is alive, held by one
// of them too (up to a timeout), so that the loss of this node loses no
// acknowledged record. An answer with a single copy (no other node alive,
// or the timeout ran out) is counted.
type CopiedAppender struct {
	logs    Appender
	copier  Copier
	timeout time.Duration
	single  prometheus.Counter
}

// NewCopiedAppender wraps logs; timeout 0 answers once committed here.
// single counts the answers with one copy.
func NewCopiedAppender(logs Appender, copier Copier, timeout time.Duration, single prometheus.Counter) *CopiedAppender {
	return &CopiedAppender{logs: logs, copier: copier, timeout: timeout, single: single}
}

// Append commits the records, then waits for a second copy.
func (c *CopiedAppender) Append(ctx context.Context, stream string, recs []flowg.Record) error {
	if err := c.logs.Append(ctx, stream, recs); err != nil {
		return err
	}
	if c.timeout <= 0 {
		return nil
	}
	// The head after the commit covers these records (and maybe others').
	if !c.copier.WaitCopied(ctx, c.logs.Head(), c.timeout) {
		c.single.Inc()
	}
	return nil
}
