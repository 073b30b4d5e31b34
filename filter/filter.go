package filter

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on a filter's text.
const (
	// MaxLen bounds the text of a filter, in bytes.
	MaxLen = 8 << 10
	// MaxDepth bounds the nesting of parentheses and not.
	MaxDepth = 64
	// MaxListLen bounds the values of one in list.
	MaxListLen = 1000
	// MaxRegexLen bounds one regular expression, in bytes.
	MaxRegexLen = 1024
	// MaxPhraseWords bounds the words of one has phrase.
	MaxPhraseWords = 64
)

// Filter is a parsed filter. The zero value, and nil, match every record.
type Filter struct {
	root node
	src  string
}

// String returns the text the filter was parsed from.
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	return f.src
}

// Match reports whether fields satisfy the filter.
func (f *Filter) Match(fields map[string]string) bool {
	if f == nil || f.root == nil {
		return true
	}
	return f.root.match(fields)
}

// Equality is a term `field = "value"` that every matching record satisfies,
// which lets a caller answer the filter from an index on field.
type Equality struct {
	Field, Value string
}

// Equalities returns the terms `field = "value"` that stand at the top of
// the filter, alone or joined by and: every record that matches the filter
// matches each of them.
func (f *Filter) Equalities() []Equality {
	var out []Equality
	f.comparisons(false, func(n *cmpNode) {
		if n.op == opEq && !n.fold {
			out = append(out, Equality{n.field, n.value})
		}
	})
	return out
}

// Phrase is a term `field has "..."` that every matching record
// satisfies (case-sensitive): the field holds the words, one after the
// other, which lets a caller skip what holds none of them.
type Phrase struct {
	Field string
	Words []string
}

// Phrases returns the terms `field has "..."` that stand at the top of the
// filter, alone or joined by and.
func (f *Filter) Phrases() []Phrase {
	var out []Phrase
	f.comparisons(false, func(n *cmpNode) {
		if n.op == opHas && !n.fold {
			out = append(out, Phrase{n.field, n.words})
		}
	})
	return out
}

// Fields returns the names of the fields the filter reads.
func (f *Filter) Fields() []string {
	var out []string
	f.comparisons(true, func(n *cmpNode) {
		if !slices.Contains(out, n.field) {
			out = append(out, n.field)
		}
	})
	return out
}

// comparisons calls fn for each comparison of the filter: every one with
// all, else only those at the top, alone or joined by and.
func (f *Filter) comparisons(all bool, fn func(*cmpNode)) {
	if f == nil || f.root == nil {
		return
	}
	var walk func(n node)
	walk = func(n node) {
		switch n := n.(type) {
		case *andNode:
			walk(n.l)
			walk(n.r)
		case *orNode:
			if all {
				walk(n.l)
				walk(n.r)
			}
		case *notNode:
			if all {
				walk(n.x)
			}
		case *cmpNode:
			fn(n)
		}
	}
	walk(f.root)
}

// IsEquality reports whether the filter is one term `field = "value"` and
// nothing else: an index on field answers it whole.
func (f *Filter) IsEquality() bool {
	if f == nil {
		return false
	}
	n, ok := f.root.(*cmpNode)
	return ok && n.op == opEq && !n.fold
}

// SyntaxError is a filter that does not parse.
type SyntaxError struct {
	// Column is the 1-based byte offset of the problem in the filter text.
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter syntax error at column %d: %s", e.Column, e.Msg)
}

// Parse parses a filter. Blank text gives a filter that matches everything.
func Parse(src string) (*Filter, error) {
	if len(src) > MaxLen {
		return nil, &SyntaxError{Column: MaxLen + 1, Msg: fmt.Sprintf("filter is %d bytes, more than the limit of %d", len(src), MaxLen)}
	}
	if !utf8.ValidString(src) {
		return nil, &SyntaxError{Column: firstInvalidUTF8(src) + 1, Msg: "filter is not valid UTF-8"}
	}
	p := &parser{lx: lexer{src: src}}
	p.next()
	if p.err != nil {
		return nil, p.err
	}
	if p.tok.kind == tEOF {
		return &Filter{src: src}, nil
	}
	root, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if p.err != nil {
		return nil, p.err
	}
	if p.tok.kind != tEOF {
		return nil, p.errorf("expected and, or or the end of the filter, found %s", p.tok)
	}
	return &Filter{root: root, src: src}, nil
}

func firstInvalidUTF8(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return i
			}
		}
	}
	return 0
}

// The syntax tree.

type node interface{ match(map[string]string) bool }

type andNode struct{ l, r node }
type orNode struct{ l, r node }
type notNode struct{ x node }

type op int

const (
	opEq op = iota
	opNe
	opRe
	opIn
	opNotIn
	opContains
	opHas
	opGt
	opGe
	opLt
	opLe
)

// orderOps are the ordering tokens and their operators.
var orderOps = map[tokKind]op{tGt: opGt, tGe: opGe, tLt: opLt, tLe: opLe}

// symbol is an ordering operator as written.
func (o op) symbol() string { return [...]string{">", ">=", "<", "<="}[o-opGt] }

type cmpNode struct {
	field string
	op    op
	value string
	// fold compares ignoring case: the operand was written i"...".
	fold bool
	set  map[string]struct{}
	// folded holds the lower-cased i"..." values of an in list.
	folded map[string]struct{}
	re     *regexp.Regexp
	num    float64  // the operand of >, >=, <, <=
	words  []string // the words of has
}

func (n *andNode) match(f map[string]string) bool { return n.l.match(f) && n.r.match(f) }
func (n *orNode) match(f map[string]string) bool  { return n.l.match(f) || n.r.match(f) }
func (n *notNode) match(f map[string]string) bool { return !n.x.match(f) }

func (n *cmpNode) match(f map[string]string) bool {
	v := f[n.field]
	switch n.op {
	case opEq:
		return v == n.value || n.fold && strings.EqualFold(v, n.value)
	case opNe:
		return !(v == n.value || n.fold && strings.EqualFold(v, n.value))
	case opRe:
		return n.re.MatchString(v)
	case opIn:
		return n.inList(v)
	case opNotIn:
		return !n.inList(v)
	case opContains:
		if n.fold {
			return strings.Contains(strings.ToLower(v), n.value)
		}
		return strings.Contains(v, n.value)
	case opHas:
		return hasPhrase(v, n.words, n.fold)
	}
	// An ordering compares numbers: a value that is not one never matches.
	x, ok := number(v)
	if !ok {
		return false
	}
	switch n.op {
	case opGt:
		return x > n.num
	case opGe:
		return x >= n.num
	case opLt:
		return x < n.num
	}
	return x <= n.num
}

func (n *cmpNode) inList(v string) bool {
	if _, ok := n.set[v]; ok {
		return true
	}
	if len(n.folded) > 0 {
		_, ok := n.folded[strings.ToLower(v)]
		return ok
	}
	return false
}

// number reads a field value or an operand as a finite number.
func number(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// The parser.

type parser struct {
	lx  lexer
	tok token
	err error
}

func (p *parser) next() {
	if p.err != nil {
		return
	}
	p.tok, p.err = p.lx.next()
	if p.err != nil {
		p.tok = token{kind: tEOF, pos: len(p.lx.src)}
	}
}

func (p *parser) errorf(format string, args ...any) error {
	if p.err != nil {
		return p.err
	}
	return &SyntaxError{Column: p.tok.pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) parseOr(depth int) (node, error) {
	l, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	for p.tok.isKeyword("or") {
		p.next()
		r, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		l = &orNode{l, r}
	}
	return l, nil
}

func (p *parser) parseAnd(depth int) (node, error) {
	l, err := p.parseUnary(depth)
	if err != nil {
		return nil, err
	}
	for p.tok.isKeyword("and") {
		p.next()
		r, err := p.parseUnary(depth)
		if err != nil {
			return nil, err
		}
		l = &andNode{l, r}
	}
	return l, nil
}

func (p *parser) parseUnary(depth int) (node, error) {
	if depth >= MaxDepth {
		return nil, p.errorf("filter nests deeper than %d levels", MaxDepth)
	}
	switch {
	case p.tok.isKeyword("not"):
		p.next()
		x, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &notNode{x}, nil
	case p.tok.kind == tLParen:
		p.next()
		x, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.errorf("expected ')', found %s", p.tok)
		}
		p.next()
		return x, nil
	case p.tok.kind == tIdent || p.tok.kind == tQuotedIdent:
		return p.parseComparison()
	default:
		return nil, p.errorf("expected a field name, 'not' or '(', found %s", p.tok)
	}
}

func (p *parser) parseComparison() (node, error) {
	n := &cmpNode{field: p.tok.text}
	p.next()
	switch {
	case p.tok.kind == tEq:
		n.op = opEq
	case p.tok.kind == tNe:
		n.op = opNe
	case p.tok.kind == tRe:
		n.op = opRe
	case orderOps[p.tok.kind] != 0:
		n.op = orderOps[p.tok.kind]
	case p.tok.isKeyword("in"):
		n.op = opIn
	case p.tok.isKeyword("contains"):
		n.op = opContains
	case p.tok.isKeyword("has"):
		n.op = opHas
	case p.tok.isKeyword("not"):
		p.next()
		if !p.tok.isKeyword("in") {
			return nil, p.errorf("expected 'in' after 'not', found %s", p.tok)
		}
		n.op = opNotIn
	default:
		return nil, p.errorf("expected =, !=, ~=, >, >=, <, <=, in, not in, contains or has after field %q, found %s", n.field, p.tok)
	}
	p.next()
	if n.op == opIn || n.op == opNotIn {
		return n, p.parseList(n)
	}
	if n.op >= opGt {
		// A number, bare or quoted.
		x, ok := number(p.tok.text)
		if p.tok.kind != tIdent && p.tok.kind != tString || !ok {
			return nil, p.errorf("expected a number after %s, found %s", n.op.symbol(), p.tok)
		}
		n.num, n.value = x, strconv.FormatFloat(x, 'f', -1, 64)
		p.next()
		return n, nil
	}
	if _, isNum := number(p.tok.text); p.tok.kind != tString && !(p.tok.kind == tIdent && isNum && (n.op == opEq || n.op == opNe)) {
		return nil, p.errorf("expected a double-quoted string (or a number), found %s", p.tok)
	}
	n.value, n.fold = p.tok.text, p.tok.fold
	switch n.op {
	case opContains:
		if n.fold {
			n.value = strings.ToLower(n.value)
		}
	case opHas:
		if n.words = words(n.value); len(n.words) == 0 {
			return nil, p.errorf("has needs a word (letters or digits) to look for, found %s", p.tok)
		}
		if len(n.words) > MaxPhraseWords {
			return nil, p.errorf("phrase has %d words, more than the limit of %d", len(n.words), MaxPhraseWords)
		}
	case opRe:
		if n.fold {
			n.value = "(?i)" + n.value
		}
		if len(n.value) > MaxRegexLen+len("(?i)") {
			return nil, p.errorf("regular expression is %d bytes, more than the limit of %d", len(n.value), MaxRegexLen)
		}
		re, err := regexp.Compile(n.value)
		if err != nil {
			return nil, p.errorf("bad regular expression: %v", err)
		}
		n.re = re
	}
	p.next()
	return n, nil
}

func (p *parser) parseList(n *cmpNode) error {
	if p.tok.kind != tLBracket {
		return p.errorf("expected '[', found %s", p.tok)
	}
	p.next()
	n.set = map[string]struct{}{}
	for p.tok.kind != tRBracket {
		if len(n.set)+len(n.folded) > 0 {
			if p.tok.kind != tComma {
				return p.errorf("expected ',' or ']', found %s", p.tok)
			}
			p.next()
		}
		if p.tok.kind != tString {
			return p.errorf("expected a double-quoted string, found %s", p.tok)
		}
		if len(n.set)+len(n.folded) >= MaxListLen {
			return p.errorf("list has more than %d values", MaxListLen)
		}
		if p.tok.fold {
			if n.folded == nil {
				n.folded = map[string]struct{}{}
			}
			n.folded[strings.ToLower(p.tok.text)] = struct{}{}
		} else {
			n.set[p.tok.text] = struct{}{}
		}
		p.next()
	}
	p.next()
	return nil
}

// The lexer.

type tokKind int

const (
	tEOF tokKind = iota
	tIdent
	tQuotedIdent
	tString
	tEq
	tNe
	tRe
	tLParen
	tRParen
	tLBracket
	tRBracket
	tComma
	tGt
	tGe
	tLt
	tLe
)

type token struct {
	kind tokKind
	text string
	pos  int
	fold bool // a string written i"...": compared ignoring case
}

func (t token) isKeyword(kw string) bool { return t.kind == tIdent && t.text == kw }

func (t token) String() string {
	switch t.kind {
	case tEOF:
		return "the end of the filter"
	case tIdent:
		return strconv.Quote(t.text)
	case tQuotedIdent:
		return "`" + t.text + "`"
	case tString:
		if t.fold {
			return "string i" + strconv.Quote(t.text)
		}
		return "string " + strconv.Quote(t.text)
	}
	return "'" + t.text + "'"
}

type lexer struct {
	src string
	pos int
}

func isIdentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-' || c == '@' || c >= utf8.RuneSelf
}

func (lx *lexer) next() (token, error) {
	for lx.pos < len(lx.src) && strings.IndexByte(" \t\r\n", lx.src[lx.pos]) >= 0 {
		lx.pos++
	}
	start := lx.pos
	if start >= len(lx.src) {
		return token{kind: tEOF, pos: start}, nil
	}
	punct := func(k tokKind, n int) (token, error) {
		lx.pos += n
		return token{kind: k, text: lx.src[start:lx.pos], pos: start}, nil
	}
	c := lx.src[start]
	switch {
	case c == '=':
		return punct(tEq, 1)
	case c == '!' && strings.HasPrefix(lx.src[start:], "!="):
		return punct(tNe, 2)
	case c == '~' && strings.HasPrefix(lx.src[start:], "~="):
		return punct(tRe, 2)
	case c == '>' && strings.HasPrefix(lx.src[start:], ">="):
		return punct(tGe, 2)
	case c == '>':
		return punct(tGt, 1)
	case c == '<' && strings.HasPrefix(lx.src[start:], "<="):
		return punct(tLe, 2)
	case c == '<':
		return punct(tLt, 1)
	case c == '(':
		return punct(tLParen, 1)
	case c == ')':
		return punct(tRParen, 1)
	case c == '[':
		return punct(tLBracket, 1)
	case c == ']':
		return punct(tRBracket, 1)
	case c == ',':
		return punct(tComma, 1)
	case c == '"':
		return lx.lexString()
	case c == '`':
		end := strings.IndexByte(lx.src[start+1:], '`')
		if end < 0 {
			return token{}, &SyntaxError{Column: start + 1, Msg: "unterminated `quoted field name`"}
		}
		if end == 0 {
			return token{}, &SyntaxError{Column: start + 1, Msg: "empty `quoted field name`"}
		}
		lx.pos = start + 1 + end + 1
		return token{kind: tQuotedIdent, text: lx.src[start+1 : start+1+end], pos: start}, nil
	case c == 'i' && strings.HasPrefix(lx.src[start:], `i"`):
		// i"..." is a string compared ignoring case.
		lx.pos++
		t, err := lx.lexString()
		t.pos, t.fold = start, true
		return t, err
	case isIdentByte(c):
		for lx.pos < len(lx.src) && isIdentByte(lx.src[lx.pos]) {
			lx.pos++
		}
		return token{kind: tIdent, text: lx.src[start:lx.pos], pos: start}, nil
	}
	r, _ := utf8.DecodeRuneInString(lx.src[start:])
	return token{}, &SyntaxError{Column: start + 1, Msg: fmt.Sprintf("unexpected character %q", r)}
}

// lexString reads a double-quoted string with JSON escapes.
func (lx *lexer) lexString() (token, error) {
	start := lx.pos
	var b strings.Builder
	i := start + 1
	for {
		if i >= len(lx.src) {
			return token{}, &SyntaxError{Column: start + 1, Msg: "unterminated string"}
		}
		c := lx.src[i]
		switch {
		case c == '"':
			lx.pos = i + 1
			return token{kind: tString, text: b.String(), pos: start}, nil
		case c == '\\':
			if i+1 >= len(lx.src) {
				return token{}, &SyntaxError{Column: start + 1, Msg: "unterminated string"}
			}
			e := lx.src[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'u':
				if i+4 > len(lx.src) {
					return token{}, &SyntaxError{Column: i - 1, Msg: `\u needs four hex digits`}
				}
				v, err := strconv.ParseUint(lx.src[i:i+4], 16, 16)
				if err != nil {
					return token{}, &SyntaxError{Column: i - 1, Msg: `\u needs four hex digits`}
				}
				b.WriteRune(rune(v))
				i += 4
			default:
				return token{}, &SyntaxError{Column: i - 1, Msg: fmt.Sprintf("unknown escape \\%c", e)}
			}
		case c < 0x20:
			return token{}, &SyntaxError{Column: i + 1, Msg: "control character in string"}
		default:
			b.WriteByte(c)
			i++
		}
	}
}
