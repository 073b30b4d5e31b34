package serfnet

import (
	"bufio"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/serf/serf"
	"github.com/jpillora/backoff"
)

// snapshotPeers reads the nodes Serf's snapshot last knew alive, as
// "name/ip:port" join addresses, leaving out self. Serf replays the same
// file when it starts and tries those nodes once; its Snapshotter keeps
// the list to itself, so the file (one "alive: name addr" or "not-alive:
// name" line per change, a format Serf has kept since its first release)
// is read here too, for the retries Serf does not make.
func snapshotPeers(path, self string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	alive := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "alive: "):
			name, addr, ok := strings.Cut(strings.TrimPrefix(line, "alive: "), " ")
			if ok && name != self {
				alive[name] = addr
			}
		case strings.HasPrefix(line, "not-alive: "):
			delete(alive, strings.TrimPrefix(line, "not-alive: "))
		case line == "leave":
			// A graceful leave keeps the list: RejoinAfterLeave is on.
		}
	}
	var out []string
	for name, addr := range alive {
		out = append(out, name+"/"+addr)
	}
	return out
}

// rejoinPrevious keeps joining the nodes of the snapshot, with jittered
// backoff from 1 s to 30 s, until this node sees an alive member: a join
// that reached a node but left this one alone (the peer was still
// starting) is tried again. Serf tries them once at start; when that one
// try fails (the peers were busy, or a stream was refused) a node
// restarted with no join flags would otherwise stay alone until a peer
// happened to push its state.
func (c *Cluster) rejoinPrevious(addrs []string) {
	retry := &backoff.Backoff{Min: time.Second, Max: 30 * time.Second, Factor: 2, Jitter: true}
	for {
		select {
		case <-c.done:
			return
		case <-time.After(retry.Duration()):
		}
		if c.aliveOthers() > 0 {
			c.log.Info("rejoined the cluster through the snapshot's nodes")
			return
		}
		if n, err := c.serf.Join(addrs, true); n > 0 {
			c.log.Debug("reached nodes of the snapshot", "reached", n)
		} else if retry.Attempt() == 1 {
			c.log.Warn("cannot reach any node of the snapshot yet; retrying with backoff", "nodes", len(addrs), "err", err)
		}
	}
}

// aliveOthers counts the alive members other than this node.
func (c *Cluster) aliveOthers() int {
	n := 0
	for _, m := range c.serf.Members() {
		if m.Name != c.cfg.NodeID && m.Status == serf.StatusAlive {
			n++
		}
	}
	return n
}
