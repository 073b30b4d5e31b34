// Package serftest holds the Serf and memberlist timings the tests of
// several packages share: a dead node is failed in about a second, a
// partition merges in a few.
package serftest

import (
	"time"

	"github.com/hashicorp/serf/serf"
)

// Tune shrinks Serf's and memberlist's timings for tests.
func Tune(c *serf.Config) {
	ml := c.MemberlistConfig
	ml.ProbeInterval = 200 * time.Millisecond
	ml.ProbeTimeout = 100 * time.Millisecond
	ml.GossipInterval = 50 * time.Millisecond
	ml.PushPullInterval = 2 * time.Second
	ml.SuspicionMult = 2
	ml.TCPTimeout = time.Second
	ml.IndirectChecks = 1
	c.ReapInterval = time.Second
	c.ReconnectInterval = 300 * time.Millisecond
	c.ReconnectTimeout = time.Minute
	c.TombstoneTimeout = time.Minute
	c.BroadcastTimeout = time.Second
	c.LeavePropagateDelay = 100 * time.Millisecond
}
