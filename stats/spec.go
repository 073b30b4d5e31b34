package stats

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on a question's text.
const (
	// MaxFuncs bounds the functions of one question.
	MaxFuncs = 20
	// MaxBy bounds the fields a question groups by.
	MaxBy = 8
	// MaxSpecLen bounds the text of the stats and by parameters, in bytes.
	MaxSpecLen = 4 << 10
)

// Kind is what a function computes.
type Kind int

// The functions.
const (
	Count         Kind = iota // count(): records
	CountField                // count(f): records where f is not empty
	CountDistinct             // count_distinct(f): distinct non-empty values of f
	Min                       // min(f), max, sum, avg, quantile: over the values of f that are numbers
	Max
	Sum
	Avg
	Quantile
)

// Func is one function of a question.
type Func struct {
	Kind  Kind
	Field string
	// Q is the quantile of Quantile, in [0, 1].
	Q float64
	// Name names the function's column in the answer: its text as written
	// (spaces removed) or the name given with as.
	Name string
}

// funcNames maps each function's name to its kind, and the quantile
// shorthands to their quantile.
var funcNames = map[string]Kind{
	"count": Count, "count_distinct": CountDistinct, "min": Min, "max": Max, "sum": Sum, "avg": Avg,
	"quantile": Quantile, "median": Quantile, "p50": Quantile, "p90": Quantile, "p95": Quantile, "p99": Quantile, "p999": Quantile,
}

var shorthandQ = map[string]float64{"median": 0.5, "p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}

// SyntaxError is a stats or by parameter that does not parse.
type SyntaxError struct {
	// Param is the parameter: stats or by.
	Param string
	// Column is the 1-based byte offset of the problem in the parameter.
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s syntax error at column %d: %s", e.Param, e.Column, e.Msg)
}

// ParseFuncs reads a list of functions such as
// `count(), p99(latency) as slow, count_distinct(host)`. Blank text is
// count().
func ParseFuncs(src string) ([]Func, error) {
	p, err := newParser("stats", src)
	if err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return []Func{{Kind: Count, Name: "count()"}}, nil
	}
	var out []Func
	names := map[string]bool{}
	for {
		start := p.tok.pos
		f, err := p.parseFunc()
		if err != nil {
			return nil, err
		}
		f.Name = strings.Join(strings.Fields(src[start:p.lastEnd]), "")
		if p.tok.isWord("as") {
			p.next()
			if p.tok.kind != tIdent {
				return nil, p.errorf("expected a column name after as, found %s", p.tok)
			}
			f.Name = p.tok.text
			p.next()
		}
		if names[f.Name] {
			return nil, p.errorAt(start, "the column %q is asked for twice; name one with as", f.Name)
		}
		names[f.Name] = true
		if len(out) == MaxFuncs {
			return nil, p.errorAt(start, "more than %d functions", MaxFuncs)
		}
		out = append(out, f)
		if p.tok.kind == tEOF {
			return out, p.err
		}
		if p.tok.kind != tComma {
			return nil, p.errorf("expected ',' or the end, found %s", p.tok)
		}
		p.next()
	}
}

func (p *parser) parseFunc() (Func, error) {
	if p.tok.kind != tIdent {
		return Func{}, p.errorf("expected a function such as count(), avg(field) or p99(field), found %s", p.tok)
	}
	name := p.tok.text
	kind, ok := funcNames[name]
	if !ok {
		return Func{}, p.errorf("unknown function %q: use count, count_distinct, min, max, sum, avg, quantile, median, p50, p90, p95, p99 or p999", name)
	}
	p.next()
	if p.tok.kind != tLParen {
		return Func{}, p.errorf("expected '(' after %s, found %s", name, p.tok)
	}
	p.next()
	f := Func{Kind: kind, Q: shorthandQ[name]}
	if name == "quantile" {
		q, err := strconv.ParseFloat(p.tok.text, 64)
		if p.tok.kind != tIdent || err != nil || !(q >= 0 && q <= 1) {
			return Func{}, p.errorf("expected a quantile from 0 to 1 such as 0.99, found %s", p.tok)
		}
		f.Q = q
		p.next()
		if p.tok.kind != tComma {
			return Func{}, p.errorf("expected ',' and a field after the quantile, found %s", p.tok)
		}
		p.next()
	}
	switch {
	case p.tok.kind == tRParen && kind == Count:
	case p.tok.kind == tIdent || p.tok.kind == tQuotedIdent:
		f.Field = p.tok.text
		if kind == Count {
			f.Kind = CountField
		}
		p.next()
	default:
		return Func{}, p.errorf("expected a field name, found %s", p.tok)
	}
	if p.tok.kind != tRParen {
		return Func{}, p.errorf("expected ')', found %s", p.tok)
	}
	p.lastEnd = p.tok.pos + 1
	p.next()
	return f, nil
}

// ParseBy reads the fields to group by: names separated by commas, each a
// bare word or quoted with backticks.
func ParseBy(src string) ([]string, error) {
	p, err := newParser("by", src)
	if err != nil {
		return nil, err
	}
	var out []string
	for p.tok.kind != tEOF {
		if len(out) > 0 {
			if p.tok.kind != tComma {
				return nil, p.errorf("expected ',' or the end, found %s", p.tok)
			}
			p.next()
		}
		if p.tok.kind != tIdent && p.tok.kind != tQuotedIdent {
			return nil, p.errorf("expected a field name, found %s", p.tok)
		}
		for _, f := range out {
			if f == p.tok.text {
				return nil, p.errorf("field %q is named twice", f)
			}
		}
		if len(out) == MaxBy {
			return nil, p.errorf("more than %d fields", MaxBy)
		}
		out = append(out, p.tok.text)
		p.next()
	}
	return out, p.err
}

// Steps are the bucket widths an automatic step picks from.
var Steps = []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute,
	time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}

// MaxAutoBuckets is the most buckets an automatic step makes of a window.
const MaxAutoBuckets = 120

// AutoStep is the smallest of Steps that cuts the window into at most
// MaxAutoBuckets buckets.
func AutoStep(window time.Duration) time.Duration {
	for _, s := range Steps {
		if window <= s*MaxAutoBuckets {
			return s
		}
	}
	return Steps[len(Steps)-1]
}

// The lexer: bare words (letters, digits and _ . - @, as in filters),
// `quoted words`, ( ) and ,.

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tQuotedIdent
	tLParen
	tRParen
	tComma
)

type token struct {
	kind tokKind
	text string
	pos  int
}

func (t token) isWord(w string) bool { return t.kind == tIdent && t.text == w }

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "the end"
	case tIdent:
		return strconv.Quote(t.text)
	case tQuotedIdent:
		return "`" + t.text + "`"
	}
	return "'" + t.text + "'"
}

type parser struct {
	param   string
	src     string
	pos     int
	tok     token
	lastEnd int // the end of the last function read
	err     error
}

func newParser(param, src string) (*parser, error) {
	if len(src) > MaxSpecLen {
		return nil, &SyntaxError{Param: param, Column: MaxSpecLen + 1, Msg: fmt.Sprintf("%d bytes, more than the limit of %d", len(src), MaxSpecLen)}
	}
	if !utf8.ValidString(src) {
		return nil, &SyntaxError{Param: param, Column: 1, Msg: "not valid UTF-8"}
	}
	p := &parser{param: param, src: src}
	p.next()
	return p, p.err
}

func (p *parser) errorAt(pos int, format string, args ...any) error {
	if p.err != nil {
		return p.err
	}
	return &SyntaxError{Param: p.param, Column: pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errorf(format string, args ...any) error {
	return p.errorAt(p.tok.pos, format, args...)
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-' || c == '@' || c >= utf8.RuneSelf
}

func (p *parser) next() {
	if p.err != nil {
		return
	}
	for p.pos < len(p.src) && strings.IndexByte(" \t\r\n", p.src[p.pos]) >= 0 {
		p.pos++
	}
	start := p.pos
	p.tok = token{kind: tEOF, pos: start}
	if start >= len(p.src) {
		return
	}
	c := p.src[start]
	switch {
	case c == '(' || c == ')' || c == ',':
		p.pos++
		p.tok = token{kind: map[byte]tokKind{'(': tLParen, ')': tRParen, ',': tComma}[c], text: string(c), pos: start}
	case c == '`':
		end := strings.IndexByte(p.src[start+1:], '`')
		if end <= 0 {
			p.err = &SyntaxError{Param: p.param, Column: start + 1, Msg: "unterminated or empty `quoted field name`"}
			return
		}
		p.pos = start + end + 2
		p.tok = token{kind: tQuotedIdent, text: p.src[start+1 : start+1+end], pos: start}
	case isWordByte(c):
		for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
			p.pos++
		}
		p.tok = token{kind: tIdent, text: p.src[start:p.pos], pos: start}
	default:
		r, _ := utf8.DecodeRuneInString(p.src[start:])
		p.err = &SyntaxError{Param: p.param, Column: start + 1, Msg: fmt.Sprintf("unexpected character %q", r)}
	}
}

// number reads a field value as a finite number.
func number(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}
