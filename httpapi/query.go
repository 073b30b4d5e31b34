package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/filter"
)

// recordJSON is a record as the API writes it.
type recordJSON struct {
	Timestamp string            `json:"timestamp"`
	Fields    map[string]string `json:"fields"`
}

func toJSON(r flowg.Record) recordJSON {
	return recordJSON{Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano), Fields: r.Fields}
}

// parseTimeParam reads from or to: RFC 3339, a Unix epoch (s, ms, µs or
// ns by magnitude), now, or a time relative to now: -1h, now-15m, now+5m
// (units ms, s, m, h, d, w, combinable: -1h30m).
func parseTimeParam(r *http.Request, name string, now time.Time) (time.Time, error) {
	s := strings.TrimSpace(r.URL.Query().Get(name))
	if s == "" {
		return time.Time{}, nil
	}
	t, err := ParseQueryTime(s, now)
	if err != nil {
		return t, errorf(http.StatusBadRequest, "parameter %s=%.40q: %v", name, s, err)
	}
	if t.UnixNano() < 0 {
		return t, errorf(http.StatusBadRequest, "parameter %s is before 1970", name)
	}
	return t, nil
}

// ParseQueryTime reads a query time; see parseTimeParam.
func ParseQueryTime(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	rel, ok := strings.CutPrefix(s, "now")
	if ok && rel == "" {
		return now.UTC(), nil
	}
	if rel == "" || rel[0] != '-' && rel[0] != '+' {
		if t, err := parseEpoch(s); err == nil {
			return t, nil
		}
		return time.Time{}, errors.New("use RFC 3339, a Unix epoch, now, or now-15m / -1h / now+5m")
	}
	d, err := parseSpan(rel[1:])
	if err != nil {
		return time.Time{}, err
	}
	if rel[0] == '-' {
		d = -d
	}
	return now.Add(d).UTC(), nil
}

// spanUnits are the units of a span, longest first.
var spanUnits = []struct {
	unit string
	d    time.Duration
}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}}

// parseSpan reads a duration with Go's units plus d (24 h) and w (7 d).
func parseSpan(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("a sign with no duration after it")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		j := i
		for j < len(s) && (s[j] < '0' || s[j] > '9') && s[j] != '.' {
			j++
		}
		if i == 0 || j == i {
			return 0, fmt.Errorf("%q is not a duration such as 15m, 1h30m or 7d", s)
		}
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 15m, 1h30m or 7d", s)
		}
		var unit time.Duration
		for _, u := range spanUnits {
			if u.unit == s[i:j] {
				unit = u.d
			}
		}
		if unit == 0 {
			return 0, fmt.Errorf("unit %q: use ms, s, m, h, d or w", s[i:j])
		}
		if total += time.Duration(n * float64(unit)); n*float64(unit) > float64(290*365*24*time.Hour) || total < 0 {
			return 0, errors.New("more than 290 years")
		}
		s = s[j:]
	}
	return total, nil
}

// intParam reads a whole-number parameter from lo to hi, def when absent.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, errorf(http.StatusBadRequest, "%s=%.20q is not a whole number from %d to %d", name, s, lo, hi)
	}
	return n, nil
}

// checkParams answers 400 for a query parameter the route does not take,
// naming it and the accepted ones: a misspelt filter must not quietly
// return everything.
func (a *API) checkParams(w http.ResponseWriter, r *http.Request, accepted ...string) bool {
	for name := range r.URL.Query() {
		if !slices.Contains(accepted, name) {
			a.writeError(w, r, errorf(http.StatusBadRequest, "unknown query parameter %q: this call takes %s", name, strings.Join(accepted, ", ")))
			return false
		}
	}
	return true
}

func parseFilterParam(r *http.Request) (*filter.Filter, error) {
	f, err := filter.Parse(r.URL.Query().Get("filter"))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	return f, nil
}

// parseWindow reads the stream and the parameters that select records:
// from, to and filter.
func parseWindow(r *http.Request) (flowg.Query, error) {
	q := flowg.Query{Stream: r.PathValue("stream")}
	var err error
	now := time.Now()
	if q.From, err = parseTimeParam(r, "from", now); err != nil {
		return q, err
	}
	if q.To, err = parseTimeParam(r, "to", now); err != nil {
		return q, err
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return q, errorf(http.StatusBadRequest, "from must be before to")
	}
	q.Filter, err = parseFilterParam(r)
	return q, err
}

func (a *API) query(w http.ResponseWriter, r *http.Request) {
	if !a.checkParams(w, r, "from", "to", "filter", "limit", "order", "cursor") {
		return
	}
	q, err := parseWindow(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if q.Limit, err = intParam(r, "limit", 100, 1, a.cfg.Limits.MaxQueryLimit); err != nil {
		a.writeError(w, r, err)
		return
	}
	switch o := r.URL.Query().Get("order"); o {
	case "", "desc":
	case "asc":
		q.Ascending = true
	default:
		a.writeError(w, r, errorf(http.StatusBadRequest, "order=%.20q is neither asc nor desc", o))
		return
	}
	q.Cursor = r.URL.Query().Get("cursor")
	page, err := a.cfg.Logs.Query(r.Context(), q)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := struct {
		Records    []recordJSON `json:"records"`
		NextCursor string       `json:"next_cursor,omitempty"`
		// Behind lists the nodes whose records this node does not all
		// hold yet: the answer may lack their latest.
		Behind []originLagJSON `json:"behind,omitempty"`
	}{Records: make([]recordJSON, 0, len(page.Records)), NextCursor: page.NextCursor}
	if a.cfg.Replication != nil {
		out.Behind = lagJSON(a.cfg.Replication.Lag())
	}
	for _, rec := range page.Records {
		out.Records = append(out.Records, toJSON(rec))
	}
	a.m.queryRecords.Add(float64(len(page.Records)))
	writeJSON(w, http.StatusOK, out)
}

// watch streams the records committed to a stream from now on, as
// server-sent events: "event: record" with the record as JSON, a comment
// line as heartbeat, and "event: lagged" before the server ends a tail whose
// client fell behind.
func (a *API) watch(w http.ResponseWriter, r *http.Request) {
	if !a.checkParams(w, r, "filter") {
		return
	}
	// A stream that does not exist yet is tailed all the same: open the
	// tail, then start the application.
	stream := r.PathValue("stream")
	if err := flowg.ValidateStreamName(stream); err != nil {
		a.writeError(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	f, err := parseFilterParam(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if n := a.watchers.Add(1); n > int64(a.cfg.Limits.MaxWatchers) {
		a.watchers.Add(-1)
		a.writeError(w, r, errorf(http.StatusTooManyRequests, "%d live tails are open, the limit", a.cfg.Limits.MaxWatchers))
		return
	}
	defer a.watchers.Add(-1)
	a.m.watchOpen.Inc()
	defer a.m.watchOpen.Dec()

	sub := a.cfg.Logs.Subscribe(stream)
	defer sub.Close()
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": watching "+stream+"\n\n")
	if err := rc.Flush(); err != nil {
		return
	}
	beat := time.NewTicker(a.cfg.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-a.stop:
			return
		case <-beat.C:
			fmt.Fprint(w, ": heartbeat\n\n")
		case recs, ok := <-sub.Records():
			if !ok {
				if sub.Lagged() {
					a.m.watchDropped.Inc()
					fmt.Fprint(w, "event: lagged\ndata: {\"error\":\"the client fell behind; reconnect and query the gap\"}\n\n")
					rc.Flush()
				}
				return
			}
			for _, rec := range recs {
				if !f.Match(rec.Fields) {
					continue
				}
				b, _ := json.Marshal(toJSON(rec))
				fmt.Fprintf(w, "event: record\ndata: %s\n\n", b)
			}
		}
		// A tail that the client cannot take within a minute is over.
		rc.SetWriteDeadline(time.Now().Add(time.Minute))
		if err := rc.Flush(); err != nil {
			return
		}
		rc.SetWriteDeadline(time.Time{})
	}
}
