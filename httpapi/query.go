package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
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

func parseTimeParam(r *http.Request, name string) (time.Time, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, errorf(http.StatusBadRequest, "parameter %s=%.40q is not an RFC 3339 time", name, s)
	}
	if t.UnixNano() < 0 {
		return t, errorf(http.StatusBadRequest, "parameter %s is before 1970", name)
	}
	return t, nil
}

func parseFilterParam(r *http.Request) (*filter.Filter, error) {
	f, err := filter.Parse(r.URL.Query().Get("filter"))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%v", err)
	}
	return f, nil
}

func (a *API) query(w http.ResponseWriter, r *http.Request) {
	q := flowg.Query{Stream: r.PathValue("stream"), Limit: 100}
	var err error
	if q.From, err = parseTimeParam(r, "from"); err != nil {
		a.writeError(w, r, err)
		return
	}
	if q.To, err = parseTimeParam(r, "to"); err != nil {
		a.writeError(w, r, err)
		return
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		a.writeError(w, r, errorf(http.StatusBadRequest, "from must be before to"))
		return
	}
	if q.Filter, err = parseFilterParam(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > a.cfg.Limits.MaxQueryLimit {
			a.writeError(w, r, errorf(http.StatusBadRequest, "limit=%.20q is not a whole number from 1 to %d", s, a.cfg.Limits.MaxQueryLimit))
			return
		}
		q.Limit = n
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
	stream := r.PathValue("stream")
	if _, err := a.cfg.Logs.Settings(stream); err != nil {
		a.writeError(w, r, err)
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
