package httpapi

import (
	"errors"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"time"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/stats"
)

// statsRowJSON is one group of a stats answer.
type statsRowJSON struct {
	Time   string              `json:"time,omitempty"`
	By     map[string]string   `json:"by,omitempty"`
	Values map[string]*float64 `json:"values"`
}

// scan runs one question over the records q selects, one visitor per part
// of the window, once the node has room for another question.
func (a *API) scan(r *http.Request, q flowg.Query, opt flowg.ScanOptions, visit func(part int, ts time.Time, fields map[string]string) error) (int64, error) {
	if err := a.questions.Acquire(r.Context(), 1); err != nil {
		return 0, err
	}
	defer a.questions.Release(1)
	opt.MaxScan = a.cfg.Limits.MaxStatsScan
	return a.cfg.Logs.Scan(r.Context(), q, opt, visit)
}

// stats answers a question about the records of a window: functions
// (count, count_distinct, min, max, sum, avg, quantiles) grouped by fields
// and time buckets.
func (a *API) stats(w http.ResponseWriter, r *http.Request) {
	if !a.checkParams(w, r, "from", "to", "filter", "stats", "by", "step", "top") {
		return
	}
	q, err := parseWindow(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var question stats.Question
	if question.Funcs, err = stats.ParseFuncs(r.URL.Query().Get("stats")); err != nil {
		a.writeError(w, r, err)
		return
	}
	if question.By, err = stats.ParseBy(r.URL.Query().Get("by")); err != nil {
		a.writeError(w, r, err)
		return
	}
	switch s := r.URL.Query().Get("step"); s {
	case "":
	case "auto":
		if q.From.IsZero() {
			a.writeError(w, r, errorf(http.StatusBadRequest, "step=auto needs from (the window it cuts)"))
			return
		}
		to := q.To
		if to.IsZero() {
			to = time.Now()
		}
		question.Step = stats.AutoStep(to.Sub(q.From))
	default:
		d, err := parseSpan(s)
		if err == nil && d < time.Millisecond {
			err = errors.New("less than 1ms")
		}
		if err != nil {
			a.writeError(w, r, errorf(http.StatusBadRequest, "step=%.20q is not auto or a duration such as 1m, 1h or 1d: %v", s, err))
			return
		}
		question.Step = d
	}
	if question.Top, err = intParam(r, "top", 0, 1, a.cfg.Limits.MaxStatsGroups); err != nil {
		a.writeError(w, r, err)
		return
	}

	parts := runtime.GOMAXPROCS(0)
	aggs, matched := make([]*stats.Aggregator, parts), make([]int64, parts)
	// The memory is a budget of the question, shared by its parts.
	lim := stats.Limits{MaxGroups: a.cfg.Limits.MaxStatsGroups, MaxBytes: a.cfg.Limits.MaxStatsBytes / int64(parts)}
	for i := range aggs {
		aggs[i] = stats.New(question, lim)
	}
	opt := flowg.ScanOptions{Workers: parts, Fields: slices.Clone(question.By)}
	for _, f := range question.Funcs {
		if f.Field != "" {
			opt.Fields = append(opt.Fields, f.Field)
		}
	}
	opt.VisitBatch = func(part int, b flowg.Batch) error {
		matched[part] += int64(b.Len())
		return aggs[part].AddBatch(b)
	}
	scanned, err := a.scan(r, q, opt, func(part int, ts time.Time, fields map[string]string) error {
		matched[part]++
		return aggs[part].Add(ts, fields)
	})
	// The parts join in an aggregator that may hold the whole budget.
	total := stats.New(question, stats.Limits{MaxGroups: lim.MaxGroups, MaxBytes: a.cfg.Limits.MaxStatsBytes})
	for i, b := range aggs {
		if i > 0 {
			matched[0] += matched[i]
		}
		if err == nil {
			err = total.Merge(b)
		}
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ans := total.Answer()
	out := struct {
		Columns []string       `json:"columns"`
		Step    string         `json:"step,omitempty"`
		Rows    []statsRowJSON `json:"rows"`
		// Records counts the records that matched the filter; Scanned the
		// records and index entries read.
		Records     int64           `json:"records"`
		Scanned     int64           `json:"scanned"`
		Approximate []string        `json:"approximate,omitempty"`
		Behind      []originLagJSON `json:"behind,omitempty"`
	}{Rows: make([]statsRowJSON, 0, len(ans.Rows)), Records: matched[0], Scanned: scanned, Approximate: ans.Approximate}
	for _, f := range question.Funcs {
		out.Columns = append(out.Columns, f.Name)
	}
	if question.Step > 0 {
		out.Step = formatStep(question.Step)
	}
	for _, row := range ans.Rows {
		j := statsRowJSON{Values: make(map[string]*float64, len(row.Values))}
		if question.Step > 0 {
			j.Time = row.Time.Format(time.RFC3339Nano)
		}
		if len(question.By) > 0 {
			j.By = make(map[string]string, len(question.By))
			for i, f := range question.By {
				j.By[f] = row.By[i]
			}
		}
		for i, f := range question.Funcs {
			if v := row.Values[i]; !math.IsNaN(v) {
				j.Values[f.Name] = &v
			} else {
				j.Values[f.Name] = nil
			}
		}
		out.Rows = append(out.Rows, j)
	}
	if a.cfg.Replication != nil {
		out.Behind = lagJSON(a.cfg.Replication.Lag())
	}
	writeJSON(w, http.StatusOK, out)
}

// formatStep writes a step the way parseSpan reads it: 1m, 1h, 1d.
func formatStep(d time.Duration) string {
	for _, u := range spanUnits {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.unit
		}
	}
	return d.String()
}

// Bounds of the fields summary.
const (
	maxFieldNames  = 1000
	maxFieldValues = 1000
	maxFieldTop    = 100
	maxFieldBytes  = 16 << 20 // names and values held, shared by the parts
)

// fields answers with the field names of the records of a window, how many
// records hold each, and each one's most frequent values: a sidebar.
func (a *API) fields(w http.ResponseWriter, r *http.Request) {
	if !a.checkParams(w, r, "from", "to", "filter", "top", "limit") {
		return
	}
	q, err := parseWindow(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	top, err := intParam(r, "top", 5, 0, maxFieldTop)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	opt := flowg.ScanOptions{Workers: runtime.GOMAXPROCS(0), AllFields: true}
	if opt.Newest, err = intParam(r, "limit", 0, 1, int(a.cfg.Limits.MaxStatsScan)); err != nil {
		a.writeError(w, r, err)
		return
	}
	parts := opt.Workers
	tallies := make([]*stats.Fields, parts)
	for i := range tallies {
		tallies[i] = stats.NewFields(maxFieldNames, maxFieldValues, maxFieldBytes/int64(parts))
	}
	scanned, err := a.scan(r, q, opt, func(part int, _ time.Time, fields map[string]string) error {
		tallies[part].Add(fields)
		return nil
	})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	all := stats.NewFields(maxFieldNames, maxFieldValues, maxFieldBytes)
	for _, t := range tallies {
		all.Merge(t)
	}
	records, summary, capped := all.Summary(top)
	type valueJSON struct {
		Value string `json:"value"`
		Count int64  `json:"count"`
	}
	type fieldJSON struct {
		Name     string `json:"name"`
		Records  int64  `json:"records"`
		Distinct int    `json:"distinct"`
		// DistinctAtLeast says the field has more values than the node
		// tallies; Top then counts the values seen first.
		DistinctAtLeast bool        `json:"distinct_at_least,omitempty"`
		Top             []valueJSON `json:"top"`
	}
	out := struct {
		Records      int64       `json:"records"`
		Scanned      int64       `json:"scanned"`
		Fields       []fieldJSON `json:"fields"`
		FieldsCapped bool        `json:"fields_capped,omitempty"`
		// Limited says the tally stopped at limit records, the newest.
		Limited bool            `json:"limited,omitempty"`
		Behind  []originLagJSON `json:"behind,omitempty"`
	}{Records: records, Scanned: scanned, Fields: make([]fieldJSON, 0, len(summary)), FieldsCapped: capped, Limited: opt.Newest > 0 && records == int64(opt.Newest)}
	for _, f := range summary {
		j := fieldJSON{Name: f.Name, Records: f.Records, Distinct: f.Distinct, DistinctAtLeast: f.ValuesCapped, Top: make([]valueJSON, 0, len(f.Top))}
		for _, v := range f.Top {
			j.Top = append(j.Top, valueJSON{v.Value, v.Count})
		}
		out.Fields = append(out.Fields, j)
	}
	if a.cfg.Replication != nil {
		out.Behind = lagJSON(a.cfg.Replication.Lag())
	}
	writeJSON(w, http.StatusOK, out)
}
