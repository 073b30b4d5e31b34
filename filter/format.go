package filter

import (
	"sort"
	"strconv"
	"strings"
)

// Canonical returns the filter in a normal form: every name in backticks,
// every operand in parentheses, lists sorted. Parse(f.Canonical()) gives a
// filter with the same canonical form and the same matches.
func (f *Filter) Canonical() string {
	if f == nil || f.root == nil {
		return ""
	}
	var b strings.Builder
	format(&b, f.root)
	return b.String()
}

func format(b *strings.Builder, n node) {
	switch n := n.(type) {
	case *andNode:
		b.WriteByte('(')
		format(b, n.l)
		b.WriteString(" and ")
		format(b, n.r)
		b.WriteByte(')')
	case *orNode:
		b.WriteByte('(')
		format(b, n.l)
		b.WriteString(" or ")
		format(b, n.r)
		b.WriteByte(')')
	case *notNode:
		b.WriteString("not ")
		format(b, n.x)
	case *cmpNode:
		b.WriteString("`" + n.field + "`")
		switch n.op {
		case opEq:
			b.WriteString(" = " + quoteFold(n.value, n.fold))
		case opNe:
			b.WriteString(" != " + quoteFold(n.value, n.fold))
		case opRe:
			b.WriteString(" ~= " + quote(n.value))
		case opContains:
			b.WriteString(" contains " + quoteFold(n.value, n.fold))
		case opHas:
			b.WriteString(" has " + quoteFold(n.value, n.fold))
		case opGt, opGe, opLt, opLe:
			b.WriteString(" " + n.op.symbol() + " " + n.value)
		case opIn, opNotIn:
			if n.op == opIn {
				b.WriteString(" in [")
			} else {
				b.WriteString(" not in [")
			}
			vals := make([]string, 0, len(n.set)+len(n.folded))
			for v := range n.set {
				vals = append(vals, quote(v))
			}
			for v := range n.folded {
				vals = append(vals, quoteFold(v, true))
			}
			sort.Strings(vals)
			b.WriteString(strings.Join(vals, ", "))
			b.WriteByte(']')
		}
	}
}

// quoteFold is quote, marked i"..." when compared ignoring case.
func quoteFold(s string, fold bool) string {
	if fold {
		return "i" + quote(s)
	}
	return quote(s)
}

// quote writes s as a filter string: JSON escapes only, so that the lexer
// reads it back.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			h := strconv.FormatInt(int64(r), 16)
			if len(h) < 2 {
				b.WriteByte('0')
			}
			b.WriteString(h)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
