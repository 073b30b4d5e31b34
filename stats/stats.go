package stats

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/axiomhq/hyperloglog"
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

// Limits bound the memory of one question.
type Limits struct {
	// MaxGroups bounds the groups (buckets times by values).
	MaxGroups int
	// MaxExactDistinct bounds the distinct values count_distinct holds
	// exactly, over all groups; past it a group's set turns into a
	// HyperLogLog sketch (about 1% error, 16 KiB) and the answer says so.
	MaxExactDistinct int
}

// DefaultLimits are the limits a node uses unless told otherwise.
func DefaultLimits() Limits { return Limits{MaxGroups: 10_000, MaxExactDistinct: 1_000_000} }

// ErrTooManyGroups is a question whose answer has more groups than
// Limits.MaxGroups.
var ErrTooManyGroups = errors.New("too many groups")

// Aggregator computes a question over records given one by one. It is not
// safe for concurrent use; Merge joins aggregators that split the work.
type Aggregator struct {
	q      Question
	lim    Limits
	groups map[string]*group
	key    []byte
	// exact counts the distinct values held exactly, over all groups.
	exact  int
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
}

// New returns an aggregator for q.
func New(q Question, lim Limits) *Aggregator {
	d := DefaultLimits()
	if lim.MaxGroups <= 0 {
		lim.MaxGroups = d.MaxGroups
	}
	if lim.MaxExactDistinct <= 0 {
		lim.MaxExactDistinct = d.MaxExactDistinct
	}
	return &Aggregator{q: q, lim: lim, groups: map[string]*group{}, approx: make([]bool, len(q.Funcs))}
}

// Add counts one record. It fails, and counts nothing more, once the groups
// would exceed the limit.
func (a *Aggregator) Add(ts time.Time, fields map[string]string) error {
	var bucket int64
	if a.q.Step > 0 {
		ns, step := ts.UnixNano(), int64(a.q.Step)
		bucket = ns - ((ns%step)+step)%step
	}
	a.key = binary.BigEndian.AppendUint64(a.key[:0], uint64(bucket))
	for _, f := range a.q.By {
		v := fields[f]
		a.key = binary.AppendUvarint(a.key, uint64(len(v)))
		a.key = append(a.key, v...)
	}
	g := a.groups[string(a.key)]
	if g == nil {
		if len(a.groups) >= a.lim.MaxGroups {
			return fmt.Errorf("%w: more than %d; group by fewer fields, use a wider step or a narrower filter", ErrTooManyGroups, a.lim.MaxGroups)
		}
		g = &group{bucket: bucket, by: make([]string, len(a.q.By)), accs: make([]acc, len(a.q.Funcs))}
		for i, f := range a.q.By {
			g.by[i] = strings.Clone(fields[f]) // a copy: fields may be reused
		}
		a.groups[string(a.key)] = g
	}
	for i, f := range a.q.Funcs {
		a.add(i, &g.accs[i], f, fields[f.Field])
	}
	return nil
}

func (a *Aggregator) add(i int, c *acc, f Func, v string) {
	switch f.Kind {
	case Count:
		c.n++
		return
	case CountField:
		if v != "" {
			c.n++
		}
		return
	case CountDistinct:
		if v == "" {
			return
		}
		if c.hll != nil {
			c.hll.Insert([]byte(v))
			return
		}
		if c.set == nil {
			c.set = map[string]struct{}{}
		}
		if _, ok := c.set[v]; ok {
			return
		}
		if a.exact >= a.lim.MaxExactDistinct {
			a.toSketch(i, c)
			c.hll.Insert([]byte(v))
			return
		}
		c.set[strings.Clone(v)] = struct{}{}
		a.exact++
		return
	}
	x, ok := number(v)
	if !ok {
		return
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
			c.sketch, _ = ddsketch.NewDefaultDDSketch(Accuracy)
		}
		c.sketch.Add(x)
	}
}

// toSketch turns a group's exact set of distinct values into a sketch.
func (a *Aggregator) toSketch(i int, c *acc) {
	c.hll = hyperloglog.New16()
	for v := range c.set {
		c.hll.Insert([]byte(v))
	}
	a.exact -= len(c.set)
	c.set = nil
	a.approx[i] = true
}

// Merge adds the records counted by b, an aggregator of the same question.
func (a *Aggregator) Merge(b *Aggregator) error {
	for k, bg := range b.groups {
		g := a.groups[k]
		if g == nil {
			if len(a.groups) >= a.lim.MaxGroups {
				return fmt.Errorf("%w: more than %d; group by fewer fields, use a wider step or a narrower filter", ErrTooManyGroups, a.lim.MaxGroups)
			}
			g = &group{bucket: bg.bucket, by: bg.by, accs: make([]acc, len(a.q.Funcs))}
			a.groups[k] = g
		}
		for i, f := range a.q.Funcs {
			a.merge(i, &g.accs[i], &bg.accs[i], f)
		}
	}
	for i, x := range b.approx {
		a.approx[i] = a.approx[i] || x
	}
	return nil
}

func (a *Aggregator) merge(i int, c, d *acc, f Func) {
	switch f.Kind {
	case Count, CountField:
		c.n += d.n
		return
	case CountDistinct:
		if d.hll != nil && c.hll == nil {
			a.toSketch(i, c)
		}
		if c.hll != nil {
			if d.hll != nil {
				c.hll.Merge(d.hll)
			}
			for v := range d.set {
				c.hll.Insert([]byte(v))
			}
			return
		}
		for v := range d.set {
			a.add(i, c, f, v)
		}
		return
	}
	if d.n == 0 {
		return
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
			c.sketch = d.sketch
		} else {
			c.sketch.MergeWith(d.sketch)
		}
	}
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
