package stats

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/axiomhq/hyperloglog"
	"github.com/flowg-server/flowg-server"
)

// Accuracy is the relative accuracy of quantiles: a quantile is within
// this fraction of a value at that rank.
const Accuracy = 0.005

// Question is what to compute over the records a query selects.
type Question struct {
	Funcs []Func
	// By are the fields that make groups; a record without one groups
	// under the empty value.
	By []string
	// Step, when not zero, also groups by time: buckets of Step aligned on
	// the Unix epoch.
	Step time.Duration
	// Top, when not zero, keeps the Top groups with the largest value of
	// the first function (in each bucket when Step is set).
	Top int
}

// Limits bound the memory of one aggregator.
type Limits struct {
	// MaxGroups bounds the groups (buckets times by values).
	MaxGroups int
	// MaxBytes bounds the memory the aggregator holds, as it counts it:
	// groups with their by values, the distinct values count_distinct
	// holds exactly, and sketches as they grow. Past it a group's set of
	// distinct values larger than a sketch turns into a HyperLogLog sketch
	// (about 1% error, 16 KiB) and the answer says so; when that cannot
	// help, Add fails.
	MaxBytes int64
}

// DefaultLimits are the limits a node uses unless told otherwise.
func DefaultLimits() Limits { return Limits{MaxGroups: 10_000, MaxBytes: 32 << 20} }

// What the aggregator counts for what it holds (Go's map and slice
// overheads included, roughly).
const (
	groupCost    = 128      // a group, besides its key and by values
	accCost      = 72       // one function's state in a group
	valueCost    = 48       // one distinct value held exactly, besides its bytes
	sketchBins   = 2048     // a quantile sketch's most bins, each way: values over a ratio of 8e8 at full accuracy
	sketchCost   = 256      // a quantile sketch, besides its bins (8 bytes each, counted as they grow)
	distinctCost = 16 << 10 // a HyperLogLog sketch of precision 14, dense
)

// Aggregator computes a question over records given one by one. It is not
// safe for concurrent use; Merge joins aggregators that split the work.
type Aggregator struct {
	q      Question
	lim    Limits
	groups map[string]*group
	key    []byte
	// bytes is the memory held, as counted (see the costs above).
	bytes  int64
	approx []bool // by function: some group's answer is an estimate
}

type group struct {
	bucket int64 // start of the time bucket, in ns since the epoch
	by     []string
	accs   []acc
}

// acc is one function's running state in one group.
type acc struct {
	n        int64
	sum      float64
	min, max float64
	set      map[string]struct{}
	hll      *hyperloglog.Sketch
	sketch   *ddsketch.DDSketch
	bins     int   // the sketch's bins counted in the aggregator's bytes
	held     int64 // the bytes of set counted in the aggregator's bytes
}

// New returns an aggregator for q.
func New(q Question, lim Limits) *Aggregator {
	d := DefaultLimits()
	if lim.MaxGroups <= 0 {
		lim.MaxGroups = d.MaxGroups
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = d.MaxBytes
	}
	return &Aggregator{q: q, lim: lim, groups: map[string]*group{}, approx: make([]bool, len(q.Funcs))}
}

// Add counts one record. Once the groups or the memory held would exceed
// the Limits it fails with an error wrapping flowg.ErrLimit, and the
// question is over.
func (a *Aggregator) Add(ts time.Time, fields map[string]string) error {
	g, err := a.group(a.bucket(ts), fields)
	if err != nil {
		return err
	}
	for i, f := range a.q.Funcs {
		if err := a.add(i, &g.accs[i], f, fields[f.Field]); err != nil {
			return err
		}
	}
	return nil
}

// bucket is the start of ts's time bucket, in ns since the epoch; 0
// without a step.
func (a *Aggregator) bucket(ts time.Time) int64 { return a.bucketNano(ts.UnixNano()) }

func (a *Aggregator) bucketNano(ns int64) int64 {
	if a.q.Step <= 0 {
		return 0
	}
	step := int64(a.q.Step)
	return ns - ((ns%step)+step)%step
}

// group returns the group of bucket and fields' by values, made if need
// be.
func (a *Aggregator) group(bucket int64, fields map[string]string) (*group, error) {
	a.key = binary.BigEndian.AppendUint64(a.key[:0], uint64(bucket))
	for _, f := range a.q.By {
		v := fields[f]
		a.key = binary.AppendUvarint(a.key, uint64(len(v)))
		a.key = append(a.key, v...)
	}
	if g := a.groups[string(a.key)]; g != nil {
		return g, nil
	}
	if err := a.newGroup(int64(2 * len(a.key))); err != nil {
		return nil, err
	}
	g := &group{bucket: bucket, by: make([]string, len(a.q.By)), accs: make([]acc, len(a.q.Funcs))}
	for i, f := range a.q.By {
		g.by[i] = strings.Clone(fields[f]) // a copy: fields may be reused
	}
	a.groups[string(a.key)] = g
	return g, nil
}

// AddBatch counts a batch of records. A question of counts only, grouped
// by fields the batch holds as dictionaries (up to 8), tallies the
// records' codes and updates each group once; any other adds them one by
// one.
func (a *Aggregator) AddBatch(b flowg.Batch) error {
	n := b.Len()
	countsOnly := len(a.q.By) <= 8
	for _, f := range a.q.Funcs {
		countsOnly = countsOnly && f.Kind == Count
	}
	dicts, codes := make([][]string, len(a.q.By)), make([][]byte, len(a.q.By))
	for i, f := range a.q.By {
		if !countsOnly {
			break
		}
		dicts[i], codes[i], countsOnly = b.Dict(f)
	}
	if !countsOnly {
		fields := map[string]string{}
		for i := range n {
			clear(fields)
			for _, f := range a.q.By {
				if v, ok := b.Value(f, i); ok {
					fields[f] = v
				}
			}
			for _, f := range a.q.Funcs {
				if f.Field == "" {
					continue
				}
				if v, ok := b.Value(f.Field, i); ok {
					fields[f.Field] = v
				}
			}
			if err := a.Add(time.Unix(0, b.UnixNano(i)), fields); err != nil {
				return err
			}
		}
		return nil
	}
	type tallyKey struct {
		bucket int64
		codes  uint64
	}
	fields := map[string]string{}
	if a.q.Step == 0 && len(codes) <= 1 { // a count a code, straight to its group
		var counts [256]int64
		if len(codes) == 0 {
			counts[0] = int64(n)
		} else {
			for _, c := range codes[0] {
				counts[c]++
			}
		}
		for c, count := range counts {
			if count == 0 {
				continue
			}
			clear(fields)
			if c > 0 {
				fields[a.q.By[0]] = dicts[0][c-1]
			}
			if err := a.addCount(0, fields, count); err != nil {
				return err
			}
		}
		return nil
	}
	if a.q.Step > 0 && len(codes) == 0 { // a histogram: a search per bucket
		for i := 0; i < n; {
			bucket := a.bucketNano(b.UnixNano(i))
			end := bucket + int64(a.q.Step)
			j := i + sort.Search(n-i, func(k int) bool { return b.UnixNano(i+k) >= end })
			if err := a.addCount(bucket, fields, int64(j-i)); err != nil {
				return err
			}
			i = j
		}
		return nil
	}
	tally := map[tallyKey]int64{}
	// Records come in time order: runs of one key, and a bucket is
	// computed again only once a record is past it.
	var run tallyKey
	count := int64(0)
	bucketEnd := int64(math.MinInt64)
	for i := range n {
		var k tallyKey
		if a.q.Step > 0 {
			if ns := b.UnixNano(i); ns >= run.bucket && ns < bucketEnd {
				k.bucket = run.bucket
			} else {
				k.bucket = a.bucketNano(ns)
				bucketEnd = k.bucket + int64(a.q.Step)
			}
		}
		for _, c := range codes {
			k.codes = k.codes<<8 | uint64(c[i])
		}
		if k != run && count > 0 {
			tally[run] += count
			count = 0
		}
		run = k
		count++
	}
	if count > 0 {
		tally[run] += count
	}
	for k, count := range tally {
		clear(fields)
		for j := len(a.q.By) - 1; j >= 0; j-- {
			if code := byte(k.codes >> (8 * (len(a.q.By) - 1 - j))); code > 0 {
				fields[a.q.By[j]] = dicts[j][code-1]
			}
		}
		if err := a.addCount(k.bucket, fields, count); err != nil {
			return err
		}
	}
	return nil
}

// addCount adds count records to the group of bucket and fields, whose
// functions are all count().
func (a *Aggregator) addCount(bucket int64, fields map[string]string, count int64) error {
	g, err := a.group(bucket, fields)
	if err != nil {
		return err
	}
	for i := range g.accs {
		g.accs[i].n += count
	}
	return nil
}

// newGroup counts a new group whose key and by values take keyBytes.
func (a *Aggregator) newGroup(keyBytes int64) error {
	if len(a.groups) >= a.lim.MaxGroups {
		return fmt.Errorf("%w: more than %d groups; group by fewer fields, use a wider step or a narrower filter", flowg.ErrLimit, a.lim.MaxGroups)
	}
	return a.charge(groupCost + keyBytes + int64(len(a.q.Funcs))*accCost)
}

// charge counts n more bytes held, failing past the budget.
func (a *Aggregator) charge(n int64) error {
	if a.bytes += n; a.bytes > a.lim.MaxBytes {
		return fmt.Errorf("%w: the answer would hold more than %d KiB; group by fewer fields or values, use a wider step or a narrower filter", flowg.ErrLimit, a.lim.MaxBytes>>10)
	}
	return nil
}

func (a *Aggregator) add(i int, c *acc, f Func, v string) error {
	switch f.Kind {
	case Count:
		c.n++
		return nil
	case CountField:
		if v != "" {
			c.n++
		}
		return nil
	case CountDistinct:
		if v == "" {
			return nil
		}
		if c.hll != nil {
			c.hll.Insert([]byte(v))
			return nil
		}
		if c.set == nil {
			c.set = map[string]struct{}{}
		}
		if _, ok := c.set[v]; ok {
			return nil
		}
		cost := int64(len(v) + valueCost)
		if a.bytes+cost > a.lim.MaxBytes && c.held+cost > distinctCost {
			// A sketch holds less than this set would: trade it.
			if err := a.toSketch(i, c); err != nil {
				return err
			}
			c.hll.Insert([]byte(v))
			return nil
		}
		if err := a.charge(cost); err != nil {
			return err
		}
		c.held += cost
		c.set[strings.Clone(v)] = struct{}{}
		return nil
	}
	x, ok := number(v)
	if !ok {
		return nil
	}
	if c.n == 0 || x < c.min {
		c.min = x
	}
	if c.n == 0 || x > c.max {
		c.max = x
	}
	c.n++
	c.sum += x
	if f.Kind == Quantile {
		if c.sketch == nil {
			if err := a.charge(sketchCost); err != nil {
				return err
			}
			c.sketch, _ = ddsketch.LogCollapsingLowestDenseDDSketch(Accuracy, sketchBins)
		}
		c.sketch.Add(x)
		return a.countBins(c)
	}
	return nil
}

// countBins charges the bins a sketch grew by.
func (a *Aggregator) countBins(c *acc) error {
	n := 0
	for _, st := range [...]store.Store{c.sketch.GetPositiveValueStore(), c.sketch.GetNegativeValueStore()} {
		if !st.IsEmpty() {
			lo, _ := st.MinIndex()
			hi, _ := st.MaxIndex()
			n += (hi - lo + 128) / 128 * 128 // the store grows by 128 bins
		}
	}
	if n <= c.bins {
		return nil
	}
	grew := n - c.bins
	c.bins = n
	return a.charge(int64(grew) * 8)
}

// toSketch turns a group's exact set of distinct values into a sketch.
func (a *Aggregator) toSketch(i int, c *acc) error {
	c.hll = hyperloglog.New14()
	for v := range c.set {
		c.hll.Insert([]byte(v))
	}
	a.bytes -= c.held
	c.set, c.held = nil, 0
	a.approx[i] = true
	return a.charge(distinctCost)
}

// Merge adds the records counted by b, an aggregator of the same question.
func (a *Aggregator) Merge(b *Aggregator) error {
	for k, bg := range b.groups {
		g := a.groups[k]
		if g == nil {
			if err := a.newGroup(int64(2 * len(k))); err != nil {
				return err
			}
			g = &group{bucket: bg.bucket, by: bg.by, accs: make([]acc, len(a.q.Funcs))}
			a.groups[k] = g
		}
		for i, f := range a.q.Funcs {
			if err := a.merge(i, &g.accs[i], &bg.accs[i], f); err != nil {
				return err
			}
		}
	}
	for i, x := range b.approx {
		a.approx[i] = a.approx[i] || x
	}
	return nil
}

func (a *Aggregator) merge(i int, c, d *acc, f Func) error {
	switch f.Kind {
	case Count, CountField:
		c.n += d.n
		return nil
	case CountDistinct:
		if d.hll != nil && c.hll == nil {
			if err := a.toSketch(i, c); err != nil {
				return err
			}
		}
		if c.hll != nil {
			if d.hll != nil {
				c.hll.Merge(d.hll)
			}
			for v := range d.set {
				c.hll.Insert([]byte(v))
			}
			return nil
		}
		for v := range d.set {
			if err := a.add(i, c, f, v); err != nil {
				return err
			}
		}
		return nil
	}
	if d.n == 0 {
		return nil
	}
	if c.n == 0 || d.min < c.min {
		c.min = d.min
	}
	if c.n == 0 || d.max > c.max {
		c.max = d.max
	}
	c.n += d.n
	c.sum += d.sum
	if d.sketch != nil {
		if c.sketch == nil {
			if err := a.charge(sketchCost); err != nil {
				return err
			}
			c.sketch = d.sketch
		} else {
			c.sketch.MergeWith(d.sketch)
		}
		return a.countBins(c)
	}
	return nil
}

// Row is one group of the answer.
type Row struct {
	// Time is the start of the row's bucket; zero without a step.
	Time time.Time
	// By holds the values of Question.By.
	By []string
	// Values holds one value per function: NaN where a numeric function
	// saw no number.
	Values []float64
}

// Answer is a question's answer.
type Answer struct {
	Rows []Row
	// Approximate names the functions whose values are estimates.
	Approximate []string
}

// Answer returns the rows: by bucket, then with Top by the first value,
// largest first, else by the group's values.
func (a *Aggregator) Answer() Answer {
	var ans Answer
	for i, x := range a.approx {
		if x {
			ans.Approximate = append(ans.Approximate, a.q.Funcs[i].Name)
		}
	}
	rows := make([]Row, 0, len(a.groups))
	for _, g := range a.groups {
		r := Row{By: g.by, Values: make([]float64, len(a.q.Funcs))}
		if a.q.Step > 0 {
			r.Time = time.Unix(0, g.bucket).UTC()
		}
		for i, f := range a.q.Funcs {
			r.Values[i] = g.accs[i].value(f)
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(x, y Row) int {
		if c := x.Time.Compare(y.Time); c != 0 {
			return c
		}
		if a.q.Top > 0 && len(a.q.Funcs) > 0 {
			if c := cmpValue(y.Values[0], x.Values[0]); c != 0 {
				return c
			}
		}
		return slices.Compare(x.By, y.By)
	})
	if a.q.Top > 0 {
		kept, n := rows[:0], 0
		for i, r := range rows {
			if i > 0 && !r.Time.Equal(rows[i-1].Time) {
				n = 0
			}
			if n < a.q.Top {
				kept = append(kept, r)
			}
			n++
		}
		rows = kept
	}
	ans.Rows = rows
	return ans
}

// cmpValue orders numbers with NaN (no value) first.
func cmpValue(x, y float64) int {
	switch {
	case math.IsNaN(x) && math.IsNaN(y):
		return 0
	case math.IsNaN(x):
		return -1
	case math.IsNaN(y):
		return 1
	}
	return cmp.Compare(x, y)
}

func (c *acc) value(f Func) float64 {
	switch f.Kind {
	case Count, CountField:
		return float64(c.n)
	case CountDistinct:
		if c.hll != nil {
			return float64(c.hll.Estimate())
		}
		return float64(len(c.set))
	}
	if c.n == 0 {
		return math.NaN()
	}
	switch f.Kind {
	case Min:
		return c.min
	case Max:
		return c.max
	case Sum:
		return c.sum
	case Avg:
		return c.sum / float64(c.n)
	}
	// The sketch is within Accuracy of the value at the rank; clamp it to
	// the values seen, which the exact answer always lies between.
	q, err := c.sketch.GetValueAtQuantile(f.Q)
	if err != nil {
		return math.NaN()
	}
	return max(c.min, min(c.max, q))
}
