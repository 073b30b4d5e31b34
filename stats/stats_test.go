package stats

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowg-server/flowg-server"
)

type record struct {
	ts     time.Time
	fields map[string]string
}

// randomRecords makes records over one day with a few low-cardinality
// fields, numbers (some missing, some not numbers) and a wide field.
func randomRecords(rng *rand.Rand, n int) []record {
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	out := make([]record, n)
	for i := range out {
		f := map[string]string{
			"level":   []string{"info", "warn", "error", "debug"}[rng.IntN(4)],
			"service": "svc-" + strconv.Itoa(rng.IntN(7)),
			"trace":   strconv.FormatUint(rng.Uint64N(uint64(n)), 16),
		}
		switch rng.IntN(10) {
		case 0: // missing
		case 1:
			f["latency"] = "n/a"
		case 2:
			f["latency"] = strconv.FormatFloat(-rng.Float64()*10, 'f', 3, 64)
		default:
			f["latency"] = strconv.FormatFloat(rng.ExpFloat64()*100, 'f', 3, 64)
		}
		if rng.IntN(3) > 0 {
			f["host"] = "h" + strconv.Itoa(rng.IntN(20))
		}
		out[i] = record{base.Add(time.Duration(rng.Int64N(int64(24 * time.Hour)))), f}
	}
	return out
}

// wantRow is a row of the brute force, with for quantiles the value on
// the other side of the rank.
type wantRow struct {
	Row
	alt []float64
}

// bruteForce answers q the obvious way: every group's values kept, sorted.
func bruteForce(q Question, recs []record) []wantRow {
	type grp struct {
		t    time.Time
		by   []string
		vals [][]string
	}
	groups := map[string]*grp{}
	for _, r := range recs {
		var t time.Time
		if q.Step > 0 {
			ns := r.ts.UnixNano() // buckets aligned on the epoch, times after 1970
			t = time.Unix(0, ns-ns%int64(q.Step)).UTC()
		}
		by := make([]string, len(q.By))
		for i, f := range q.By {
			by[i] = r.fields[f]
		}
		k := fmt.Sprint(t.UnixNano(), by)
		g := groups[k]
		if g == nil {
			g = &grp{t: t, by: by, vals: make([][]string, len(q.Funcs))}
			groups[k] = g
		}
		for i, f := range q.Funcs {
			g.vals[i] = append(g.vals[i], r.fields[f.Field])
		}
	}
	var rows []wantRow
	for _, g := range groups {
		row := wantRow{Row{By: g.by, Values: make([]float64, len(q.Funcs))}, make([]float64, len(q.Funcs))}
		if q.Step > 0 {
			row.Time = g.t
		}
		for i, f := range q.Funcs {
			row.Values[i], row.alt[i] = exact(f, g.vals[i])
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(x, y wantRow) int {
		if c := x.Time.Compare(y.Time); c != 0 {
			return c
		}
		if q.Top > 0 {
			if c := cmpValue(y.Values[0], x.Values[0]); c != 0 {
				return c
			}
		}
		return slices.Compare(x.By, y.By)
	})
	if q.Top > 0 {
		var kept []wantRow
		n := 0
		for i, r := range rows {
			if i > 0 && !r.Time.Equal(rows[i-1].Time) {
				n = 0
			}
			if n < q.Top {
				kept = append(kept, r)
			}
			n++
		}
		rows = kept
	}
	return rows
}

// exact returns a function's value, or for a quantile the values on
// either side of its rank.
func exact(f Func, vals []string) (float64, float64) {
	var nonEmpty []string
	var nums []float64
	for _, v := range vals {
		if v != "" {
			nonEmpty = append(nonEmpty, v)
		}
		if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && !math.IsInf(x, 0) && !math.IsNaN(x) {
			nums = append(nums, x)
		}
	}
	switch f.Kind {
	case Count:
		n := float64(len(vals))
		return n, n
	case CountField:
		n := float64(len(nonEmpty))
		return n, n
	case CountDistinct:
		slices.Sort(nonEmpty)
		n := float64(len(slices.Compact(nonEmpty)))
		return n, n
	}
	if len(nums) == 0 {
		return math.NaN(), math.NaN()
	}
	slices.Sort(nums)
	sum := 0.0
	for _, x := range nums {
		sum += x
	}
	switch f.Kind {
	case Min:
		return nums[0], nums[0]
	case Max:
		return nums[len(nums)-1], nums[len(nums)-1]
	case Sum:
		return sum, sum
	case Avg:
		return sum / float64(len(nums)), sum / float64(len(nums))
	}
	// Either value next to the rank is right: the sketch takes the lower
	// one for positive values and the upper one for negative values.
	r := f.Q * float64(len(nums)-1)
	return nums[int(math.Floor(r))], nums[int(math.Ceil(r))]
}

func randomQuestion(rng *rand.Rand) Question {
	specs := []string{"count()", "count(host)", "count_distinct(trace)", "count_distinct(host)", "min(latency)",
		"max(latency)", "sum(latency)", "avg(latency)", "p50(latency)", "p99(latency)", "quantile(0.25, latency)", "median(latency)"}
	rng.Shuffle(len(specs), func(i, j int) { specs[i], specs[j] = specs[j], specs[i] })
	funcs, err := ParseFuncs(strings.Join(specs[:1+rng.IntN(4)], ", "))
	if err != nil {
		panic(err)
	}
	q := Question{Funcs: funcs}
	for _, f := range []string{"level", "service", "host"} {
		if rng.IntN(2) == 0 {
			q.By = append(q.By, f)
		}
	}
	if rng.IntN(2) == 0 {
		q.Step = []time.Duration{time.Hour, 6 * time.Hour, 7 * time.Minute}[rng.IntN(3)]
	}
	if rng.IntN(3) == 0 && funcs[0].Kind != Quantile { // estimates rank near ties either way
		q.Top = 1 + rng.IntN(5)
	}
	return q
}

// TestAgainstBruteForce checks random questions over random records, the
// records split among aggregators and merged as the API does, against the
// obvious computation: exact but for quantiles, which are within Accuracy
// of the value at their rank.
func TestAgainstBruteForce(t *testing.T) {
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 1))
		recs := randomRecords(rng, 1+rng.IntN(3000))
		q := randomQuestion(rng)
		if seed%4 == 3 { // counts only: the batches' fast path
			q.Funcs, _ = ParseFuncs("count(), count() as n")
			q.Top = 0
		}
		parts := 1 + rng.IntN(4)
		aggs := make([]*Aggregator, parts)
		for i := range aggs {
			aggs[i] = New(q, Limits{})
		}
		for i := 0; i < len(recs); {
			if seed%2 == 0 { // one by one
				if err := aggs[rng.IntN(parts)].Add(recs[i].ts, recs[i].fields); err != nil {
					t.Fatal(err)
				}
				i++
				continue
			}
			n := min(len(recs)-i, 1+rng.IntN(300))
			batch := slices.Clone(recs[i : i+n]) // in time order, as a store gives them
			slices.SortStableFunc(batch, func(a, b record) int { return a.ts.Compare(b.ts) })
			if err := aggs[rng.IntN(parts)].AddBatch(sliceBatch(batch)); err != nil {
				t.Fatal(err)
			}
			i += n
		}
		for _, b := range aggs[1:] {
			if err := aggs[0].Merge(b); err != nil {
				t.Fatal(err)
			}
		}
		got, want := aggs[0].Answer(), bruteForce(q, recs)
		name := fmt.Sprintf("seed %d, %d records, %+v", seed, len(recs), q)
		if len(got.Approximate) != 0 {
			t.Errorf("%s: approximate %v under the limits", name, got.Approximate)
		}
		if len(got.Rows) != len(want) {
			t.Fatalf("%s: %d rows, want %d", name, len(got.Rows), len(want))
		}
		for i, w := range want {
			g := got.Rows[i]
			if !g.Time.Equal(w.Time) || !slices.Equal(g.By, w.By) {
				t.Fatalf("%s: row %d is %v %v, want %v %v", name, i, g.Time, g.By, w.Time, w.By)
			}
			for j, f := range q.Funcs {
				if !close(f, g.Values[j], w.Values[j]) && !close(f, g.Values[j], w.alt[j]) {
					t.Errorf("%s: row %d (%v %v) %s = %v, want %v", name, i, w.Time, w.By, f.Name, g.Values[j], w.Values[j])
				}
			}
		}
	}
}

func close(f Func, got, want float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	switch f.Kind {
	case Quantile:
		return math.Abs(got-want) <= Accuracy*math.Abs(want)+1e-9
	case Sum, Avg:
		return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
	}
	return got == want
}

func TestDistinctPastTheExactLimit(t *testing.T) {
	q := Question{Funcs: []Func{{Kind: CountDistinct, Field: "id", Name: "count_distinct(id)"}}, By: []string{"g"}}
	a, b := New(q, Limits{MaxBytes: 256 << 10}), New(q, Limits{MaxBytes: 256 << 10})
	for i := range 50_000 {
		f := map[string]string{"id": strconv.Itoa(i % 20_000), "g": strconv.Itoa(i % 2)}
		if i%3 == 0 {
			b.Add(time.Time{}, f)
		} else {
			a.Add(time.Time{}, f)
		}
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	ans := a.Answer()
	if !slices.Equal(ans.Approximate, []string{"count_distinct(id)"}) {
		t.Errorf("approximate = %v", ans.Approximate)
	}
	for _, r := range ans.Rows {
		if v := r.Values[0]; math.Abs(v-10_000) > 300 { // 3%
			t.Errorf("group %v: %v distinct, want about 10,000", r.By, v)
		}
	}
}

// TestMemoryBudget: by values and quantile sketches that would hold more
// than the budget fail the question, whatever the group count.
func TestMemoryBudget(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	a := New(Question{Funcs: []Func{{Kind: Count}}, By: []string{"v"}}, Limits{MaxBytes: 1 << 20})
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = a.Add(time.Time{}, map[string]string{"v": big + strconv.Itoa(i)})
	}
	if !errors.Is(err, flowg.ErrLimit) || !strings.Contains(err.Error(), "more than 1024 KiB") || a.bytes > 1<<20+200<<10 {
		t.Errorf("64 KiB by values: %v, %d bytes held", err, a.bytes)
	}
	q := New(Question{Funcs: []Func{{Kind: Quantile, Q: 0.5, Field: "x"}}, By: []string{"g"}}, Limits{MaxBytes: 1 << 20})
	err = nil
	for i := 0; i < 1000 && err == nil; i++ { // values a ratio of 1e12 apart: the sketches' widest
		err = q.Add(time.Time{}, map[string]string{"g": strconv.Itoa(i), "x": "1e-6"})
		if err == nil {
			err = q.Add(time.Time{}, map[string]string{"g": strconv.Itoa(i), "x": "1e6"})
		}
	}
	if !errors.Is(err, flowg.ErrLimit) {
		t.Errorf("a thousand wide quantile sketches under 1 MiB: %v", err)
	}
	// Small sets are not traded for larger sketches: the budget fails.
	d := New(Question{Funcs: []Func{{Kind: CountDistinct, Field: "x", Name: "n"}}, By: []string{"g"}}, Limits{MaxBytes: 64 << 10})
	err = nil
	for i := 0; i < 1000 && err == nil; i++ {
		err = d.Add(time.Time{}, map[string]string{"g": strconv.Itoa(i), "x": "v"})
	}
	if !errors.Is(err, flowg.ErrLimit) || len(d.Answer().Approximate) != 0 {
		t.Errorf("a thousand one-value sets under 64 KiB: %v, %d bytes, approximate %v", err, d.bytes, d.Answer().Approximate)
	}
}

func TestTooManyGroups(t *testing.T) {
	a := New(Question{Funcs: []Func{{Kind: Count}}, By: []string{"id"}}, Limits{MaxGroups: 10})
	var err error
	for i := 0; i < 11 && err == nil; i++ {
		err = a.Add(time.Time{}, map[string]string{"id": strconv.Itoa(i)})
	}
	if !errors.Is(err, flowg.ErrLimit) || !strings.Contains(err.Error(), "more than 10") {
		t.Errorf("err = %v", err)
	}
}

func TestParseFuncs(t *testing.T) {
	for _, tc := range []struct {
		src   string
		names string
		err   string
	}{
		{"", "count()", ""},
		{"count( ), p99(latency) as slow, quantile(0.25, `http.status`)", "count() slow quantile(0.25,`http.status`)", ""},
		{"count(host), count_distinct(host), min(x), max(x), sum(x), avg(x), median(x)", "count(host) count_distinct(host) min(x) max(x) sum(x) avg(x) median(x)", ""},
		{"count() as n, count() as n", "", `column 15: the column "n" is asked for twice`},
		{"count(), count()", "", `column 10: the column "count()" is asked for twice`},
		{"mean(x)", "", `column 1: unknown function "mean"`},
		{"avg()", "", `column 5: expected a field name, found ')'`},
		{"avg(x", "", `column 6: expected ')', found the end`},
		{"quantile(1.5, x)", "", "column 10: expected a quantile from 0 to 1"},
		{"quantile(0.5 x)", "", "column 14: expected ',' and a field"},
		{"count() count()", "", "column 9: expected ',' or the end"},
		{"count() as", "", "column 11: expected a column name after as"},
		{"count() $", "", `column 9: unexpected character '$'`},
		{"avg(`x)", "", "column 5: unterminated or empty"},
		{manyFuncs(21), "", "column 221: more than 20 functions"},
	} {
		fs, err := ParseFuncs(tc.src)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseFuncs(%q) error = %v, want %q", tc.src, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseFuncs(%q): %v", tc.src, err)
			continue
		}
		var names []string
		for _, f := range fs {
			names = append(names, f.Name)
		}
		if got := strings.Join(names, " "); got != tc.names {
			t.Errorf("ParseFuncs(%q) names %q, want %q", tc.src, got, tc.names)
		}
	}
}

func manyFuncs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "count(x%02d),", i)
	}
	return b.String()
}

func TestParseBy(t *testing.T) {
	if by, err := ParseBy(" service, `http.status`,level "); err != nil || !slices.Equal(by, []string{"service", "http.status", "level"}) {
		t.Errorf("ParseBy = %v, %v", by, err)
	}
	for src, want := range map[string]string{
		"a,,b":              "by syntax error at column 3: expected a field name, found ','",
		"a b":               "column 3: expected ',' or the end",
		"a, a":              `column 4: field "a" is named twice`,
		"a,b,c,d,e,f,g,h,i": "column 17: more than 8 fields",
	} {
		if _, err := ParseBy(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseBy(%q) = %v, want %q", src, err, want)
		}
	}
}

func TestAutoStep(t *testing.T) {
	for window, want := range map[time.Duration]time.Duration{
		time.Minute: time.Second, 15 * time.Minute: 10 * time.Second, time.Hour: 30 * time.Second,
		24 * time.Hour: 30 * time.Minute, 30 * 24 * time.Hour: 6 * time.Hour, 10 * 365 * 24 * time.Hour: 7 * 24 * time.Hour,
	} {
		if got := AutoStep(window); got != want {
			t.Errorf("AutoStep(%v) = %v, want %v", window, got, want)
		}
	}
}

func TestFields(t *testing.T) {
	a, b := NewFields(3, 2, 1<<20), NewFields(3, 2, 1<<20)
	for i, r := range []map[string]string{
		{"level": "error", "msg": "x"}, {"level": "error", "msg": "y"}, {"level": "info", "msg": "z", "host": ""},
		{"level": "warn", "b": "1"}, {"c": "1"}, {"d": "1"},
	} {
		if i%2 == 0 {
			a.Add(r)
		} else {
			b.Add(r)
		}
	}
	a.Merge(b)
	n, fields, capped := a.Summary(1)
	if n != 6 || !capped {
		t.Errorf("records %d capped %v", n, capped)
	}
	got := fmt.Sprint(fields)
	// level: error twice, info and warn past the two values held... the
	// order the records arrive decides which; error always leads.
	if !strings.Contains(got, "{level 4 2 true [{error 2}]}") {
		t.Errorf("summary %s", got)
	}
}

func TestFieldsMemoryBudget(t *testing.T) {
	f := NewFields(1000, 1000, 1<<20)
	for i := range 10_000 {
		f.Add(map[string]string{"long": strings.Repeat("v", 2000) + strconv.Itoa(i), "mid": strings.Repeat("m", 500) + strconv.Itoa(i), "k" + strconv.Itoa(i%2000): "x"})
	}
	if f.bytes > 1<<20 {
		t.Errorf("%d bytes held, over the 1 MiB budget", f.bytes)
	}
	n, fields, capped := f.Summary(1)
	if n != 10_000 || !capped {
		t.Errorf("records %d, names capped %v", n, capped)
	}
	for _, fl := range fields {
		if fl.Name == "long" && (fl.Distinct != 0 || !fl.ValuesCapped || fl.Records != 10_000) {
			t.Errorf("values over %d bytes: %+v", MaxValueLen, fl)
		}
	}
}

func FuzzParseFuncs(f *testing.F) {
	for _, s := range []string{"count()", "p99(x) as y, count_distinct(`a b`)", "quantile(0.5, x)", "avg(", "`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		fs, err := ParseFuncs(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Column < 1 || se.Column > len(src)+1 && len(src) <= MaxSpecLen {
				t.Fatalf("ParseFuncs(%q): %v", src, err)
			}
			return
		}
		if len(fs) == 0 || len(fs) > MaxFuncs {
			t.Fatalf("ParseFuncs(%q): %d functions", src, len(fs))
		}
		a := New(Question{Funcs: fs, Step: time.Minute}, Limits{})
		a.Add(time.Unix(0, 0), map[string]string{"x": "1", "y": src})
		a.Answer()
		if _, err := ParseBy(src); err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Column < 1 {
				t.Fatalf("ParseBy(%q): %v", src, err)
			}
		}
	})
}

// sliceBatch gives records as a flowg.Batch, as a store gives its blocks:
// fields of at most 255 values in the batch as dictionaries.
type sliceBatch []record

func (b sliceBatch) Len() int             { return len(b) }
func (b sliceBatch) UnixNano(i int) int64 { return b[i].ts.UnixNano() }

func (b sliceBatch) Value(field string, i int) (string, bool) {
	v, ok := b[i].fields[field]
	return v, ok
}

func (b sliceBatch) Dict(field string) ([]string, []byte, bool) {
	var values []string
	codes := make([]byte, len(b))
	for i, r := range b {
		v, ok := r.fields[field]
		if !ok {
			continue
		}
		k := slices.Index(values, v)
		if k < 0 {
			if len(values) == 255 {
				return nil, nil, false
			}
			values, k = append(values, v), len(values)
		}
		codes[i] = byte(k + 1)
	}
	return values, codes, true
}
