package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/replica"
	"github.com/flowg-server/flowg-server/store"
)

// copiedLogs is the log store as the HTTP API sees it: an ingest request
// is answered once its records are committed here and, when another node
// is alive, held by one of them too (up to a timeout), so that the loss of
// this node loses no acknowledged record.
type copiedLogs struct {
	*store.LogStore
	rep     *replica.Replicator
	timeout time.Duration
	single  prometheus.Counter
}

func newCopiedLogs(logs *store.LogStore, rep *replica.Replicator, timeout time.Duration, reg prometheus.Registerer) *copiedLogs {
	c := &copiedLogs{LogStore: logs, rep: rep, timeout: timeout, single: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "flowg_ingest_single_copy_acks_total",
		Help: "Ingest requests answered while no other node held their records: none alive, or --ingest-copy-timeout ran out.",
	})}
	reg.MustRegister(c.single)
	return c
}

// Append commits the records, then waits for a second copy.
func (c *copiedLogs) Append(ctx context.Context, stream string, recs []flowg.Record) error {
	if err := c.LogStore.Append(ctx, stream, recs); err != nil {
		return err
	}
	if c.timeout <= 0 {
		return nil
	}
	// The head after the commit covers these records (and maybe others').
	if !c.rep.WaitCopied(ctx, c.Head(), c.timeout) {
		c.single.Inc()
	}
	return nil
}
