package replica

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	flowg "github.com/flowg-server/flowg-server"
)

// The replication protocol is versioned so that nodes of two releases can
// run side by side during a rolling upgrade. Each node advertises the range
// it speaks as the member tag VersionsTag ("1-1"); a request carries the
// version it is written in (HeaderVersion), chosen as the highest both
// ends speak, and the answer says the version it is written in. A peer
// with no version in common is left out of replication, with one log line,
// until its tag changes. A member without the tag (a node from before
// versions) speaks version 1, today's format; so does a request without
// the header.
const (
	// WireVersion is the newest version this build speaks.
	WireVersion = 1
	// DefaultVersions is the range this build speaks, 1 to WireVersion: the
	// VersionsTag value a node advertises.
	DefaultVersions = "1-1"
	// VersionsTag is the member tag with the range of versions a node speaks.
	VersionsTag = "repl"
	// HeaderVersion carries the version of a request and of its answer.
	HeaderVersion = "X-Flowg-Repl-Version"
)

// versions is a range of protocol versions, both ends included.
type versions struct{ min, max int }

func (v versions) String() string { return fmt.Sprintf("%d-%d", v.min, v.max) }

// parseVersions reads a VersionsTag value; an empty one is version 1.
func parseVersions(s string) (versions, error) {
	if s == "" {
		return versions{1, 1}, nil
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || a < 1 || b < a {
		return versions{}, fmt.Errorf("replication versions %q are not a range such as 1-2", s)
	}
	return versions{a, b}, nil
}

// common is the highest version both ranges hold, or 0.
func (v versions) common(o versions) int {
	if hi := min(v.max, o.max); hi >= max(v.min, o.min) {
		return hi
	}
	return 0
}

// versionFor is the version to speak to a peer, or 0 when there is none
// in common; the first time a peer has none (or a new range) it is logged.
func (r *core) versionFor(n flowg.Node) int {
	tag := n.Tags[VersionsTag]
	theirs, err := parseVersions(tag)
	v := 0
	if err == nil {
		v = r.versions.common(theirs)
	}
	if v > 0 {
		return v
	}
	r.trafficMu.Lock()
	logged := r.versionLogged[n.ID] == tag
	r.versionLogged[n.ID] = tag
	r.trafficMu.Unlock()
	if !logged {
		r.m.incompatible.Inc()
		r.log.Warn("a peer speaks no replication version this node speaks; not replicating with it until one of the two is upgraded",
			"peer", n.ID, "peer_versions", tag, "versions", r.versions.String())
	}
	return 0
}

// versioned serves h only for requests in a version this node speaks (a
// request without one is version 1), and says the version in the answer.
func (r *core) versioned(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		v := 1
		if s := req.Header.Get(HeaderVersion); s != "" {
			var err error
			if v, err = strconv.Atoi(s); err != nil {
				v = 0
			}
		}
		if v < r.versions.min || v > r.versions.max {
			w.Header().Set(HeaderVersion, strconv.Itoa(r.versions.max))
			http.Error(w, fmt.Sprintf("replication version %q is not one this node speaks (%s)", req.Header.Get(HeaderVersion), r.versions), http.StatusBadRequest)
			return
		}
		w.Header().Set(HeaderVersion, strconv.Itoa(v))
		h(w, req)
	}
}
