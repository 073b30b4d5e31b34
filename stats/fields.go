package stats

import (
	"cmp"
	"slices"
	"strings"
)

// Fields tallies the field names of records and the values of each: what a
// search page's sidebar shows. Its memory is bounded: past MaxNames field
// names new names are not tallied, and past MaxValues values of one field,
// or MaxBytes held in all, new values are counted only as others; so is a
// value longer than MaxValueLen.
type Fields struct {
	MaxNames, MaxValues int
	MaxBytes            int64

	records     int64
	bytes       int64
	names       map[string]*tally
	namesCapped bool
}

// MaxValueLen is the longest value a field tally holds.
const MaxValueLen = 1 << 10

// heldCost is what holding a name or value costs, besides its bytes.
const heldCost = 48

type tally struct {
	n int64 // records with the field not empty
	// values maps a value to its count in counts. (Not map[string]int64:
	// an assignment to a map stores its key again, and the keys given to
	// Add point into buffers that the caller reuses.)
	values map[string]int
	counts []int64
	others int64 // records whose value came after the values were full
}

// NewFields returns an empty tally with the given bounds.
func NewFields(maxNames, maxValues int, maxBytes int64) *Fields {
	return &Fields{MaxNames: maxNames, MaxValues: maxValues, MaxBytes: maxBytes, names: map[string]*tally{}}
}

// hold counts n more bytes held when the budget allows it.
func (s *Fields) hold(n int) bool {
	if s.bytes+int64(n+heldCost) > s.MaxBytes {
		return false
	}
	s.bytes += int64(n + heldCost)
	return true
}

// Add tallies one record.
func (s *Fields) Add(fields map[string]string) {
	s.records++
	for k, v := range fields {
		if v == "" {
			continue
		}
		if t := s.tally(k); t != nil {
			s.add(t, v, 1)
		}
	}
}

// tally returns the tally of field k, made if the bounds allow; nil if
// they do not.
func (s *Fields) tally(k string) *tally {
	t := s.names[k]
	if t == nil {
		if len(s.names) >= s.MaxNames || !s.hold(len(k)) {
			s.namesCapped = true
			return nil
		}
		t = &tally{values: map[string]int{}}
		s.names[strings.Clone(k)] = t
	}
	return t
}

func (s *Fields) add(t *tally, v string, n int64) {
	t.n += n
	if i, ok := t.values[v]; ok {
		t.counts[i] += n
	} else if len(t.values) < s.MaxValues && len(v) <= MaxValueLen && s.hold(len(v)) {
		t.values[strings.Clone(v)] = len(t.counts)
		t.counts = append(t.counts, n)
	} else {
		t.others += n
	}
}

// Merge adds the records tallied by o.
func (s *Fields) Merge(o *Fields) {
	s.records += o.records
	s.namesCapped = s.namesCapped || o.namesCapped
	for k, ot := range o.names {
		t := s.tally(k)
		if t == nil {
			continue
		}
		for v, i := range ot.values {
			s.add(t, v, ot.counts[i])
		}
		t.n += ot.others
		t.others += ot.others
	}
}

// ValueCount is a value and the records that hold it.
type ValueCount struct {
	Value string
	Count int64
}

// FieldSummary is one field's tally.
type FieldSummary struct {
	Name string
	// Records counts the records where the field is not empty.
	Records int64
	// Distinct counts its distinct values; when ValuesCapped it is a lower
	// bound and Top counts only the values seen before the cap.
	Distinct     int
	ValuesCapped bool
	// Top are the most frequent values, most frequent first.
	Top []ValueCount
}

// Summary returns the number of records tallied, every field sorted by
// name with its top values, and whether some field names were left out.
func (s *Fields) Summary(top int) (records int64, fields []FieldSummary, namesCapped bool) {
	for name, t := range s.names {
		f := FieldSummary{Name: name, Records: t.n, Distinct: len(t.values), ValuesCapped: t.others > 0}
		for v, i := range t.values {
			f.Top = append(f.Top, ValueCount{v, t.counts[i]})
		}
		slices.SortFunc(f.Top, func(a, b ValueCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Value, b.Value))
		})
		f.Top = f.Top[:min(top, len(f.Top))]
		fields = append(fields, f)
	}
	slices.SortFunc(fields, func(a, b FieldSummary) int { return cmp.Compare(a.Name, b.Name) })
	return s.records, fields, s.namesCapped
}
