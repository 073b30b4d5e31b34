package node

import (
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/dustin/go-humanize"

	"github.com/flowg-server/flowg-server/store"
)

// cgroupFiles hold the memory limit of the cgroup the process runs in:
// cgroup v2, then v1.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// cgroupLimit is the memory limit of this process's cgroup, or 0 when it
// has none.
func cgroupLimit() int64 {
	for _, f := range cgroupFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // v1 says "no limit" with a huge number
			return 0
		}
		return n
	}
	return 0
}

// memoryBudget is the node's memory budget: --memory-limit when given,
// else 80% of the cgroup's limit (the rest is for what the budget does not
// count: goroutine stacks, the runtime, page cache of mmapped tables), else
// the store's default (512 MiB). The Go runtime's soft memory limit is set
// to three quarters of it, unless GOMEMLIMIT says otherwise: the last
// quarter is for what the Go heap does not hold but the resident set
// counts, Badger's memory-mapped logs and tables above all.
func memoryBudget(flag int64, log *slog.Logger) int64 {
	budget, from := flag, "--memory-limit"
	if budget == 0 {
		if lim := cgroupLimit(); lim > 0 {
			budget, from = max(lim/5*4, 128<<20), "80% of the cgroup limit of "+humanize.IBytes(uint64(lim))
		} else {
			budget, from = store.DefaultMemoryBudget, "the default"
		}
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(budget / 4 * 3)
	}
	log.Info("memory budget", "budget", humanize.IBytes(uint64(budget)), "from", from)
	return budget
}

// ingestInFlight is --ingest-max-inflight, else an eighth of the budget.
func ingestInFlight(flag, budget int64) int64 {
	if flag > 0 {
		return flag
	}
	return max(budget/8, 8<<20)
}

// fdReserve is the file descriptors kept for what clients cannot take:
// the stores' table and log files, connections to peers and to Consul,
// health checks.
const fdReserve = 1024

// fitConnLimits lowers the connection limits, in proportion, when together
// they would leave fewer than fdReserve of the process's file descriptors
// (Go raises the soft limit to the hard one at start), and says so.
func fitConnLimits(l *connLimits, log *slog.Logger) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return
	}
	avail := int(rl.Cur) - fdReserve
	total := l.httpConns + l.mgmtConns + l.syslogConns
	if total <= avail {
		return
	}
	scale := func(n int) int { return max(1, n*max(avail, 64)/total) }
	l.httpConns, l.mgmtConns, l.syslogConns = scale(l.httpConns), scale(l.mgmtConns), scale(l.syslogConns)
	l.httpConnsPerClient = min(l.httpConnsPerClient, l.httpConns)
	l.mgmtConnsPerClient = min(l.mgmtConnsPerClient, l.mgmtConns)
	l.syslogConnsPerClient = min(l.syslogConnsPerClient, l.syslogConns)
	log.Warn("the connection limits exceed the open-file limit; lowered to fit (raise ulimit -n to keep them)",
		"open_files", rl.Cur, "http_max_connections", l.httpConns, "mgmt_max_connections", l.mgmtConns, "syslog_max_connections", l.syslogConns)
}
