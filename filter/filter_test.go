package filter

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParse_Success(t *testing.T) {
	rec := map[string]string{
		"level": "error", "message": "disk full", "http.status": "500",
		"@timestamp": "x", "odd key": "1", "host-name": "web-1",
	}
	cases := []struct {
		src   string
		match bool
	}{
		{``, true},
		{`   `, true},
		{`level = "error"`, true},
		{`level="error"`, true},
		{`level = "info"`, false},
		{`level != "info"`, true},
		{`missing = ""`, true},
		{`missing != "x"`, true},
		{`http.status = "500"`, true},
		{`@timestamp = "x"`, true},
		{"`odd key` = \"1\"", true},
		{`host-name ~= "^web-[0-9]+$"`, true},
		{`message ~= "^disk"`, true},
		{`message ~= "full$" and level = "error"`, true},
		{`level in ["warn", "error"]`, true},
		{`level in []`, false},
		{`level not in ["warn", "error"]`, false},
		{`level not in ["debug"]`, true},
		{`not level = "info"`, true},
		{`not not level = "error"`, true},
		{`level = "info" or level = "error"`, true},
		{`level = "info" or level = "debug" and message = "disk full"`, false},
		{`(level = "info" or level = "error") and message = "disk full"`, true},
		{`level = "info" or not (message = "x")`, true},
		{`message = "disk\u0020full"`, true},
		{`message = "a\"b\\c\n\t"`, false},
		{`level = i"ERROR"`, true},
		{`level = "ERROR"`, false},
		{`level != i"Error"`, false},
		{`level in ["warn", i"ERROR"]`, true},
		{`level not in [i"ERROR"]`, false},
		{`message contains "sk fu"`, true},
		{`message contains "DISK"`, false},
		{`message contains i"DISK"`, true},
		{`message has "disk"`, true},
		{`message has "isk"`, false},
		{`message has "disk full"`, true},
		{`message has "full disk"`, false},
		{`message has "disk, full!"`, true},
		{`message has i"Disk Full"`, true},
		{`message ~= i"^DISK"`, true},
		{`host-name has "web 1"`, true},
	}
	for _, c := range cases {
		f, err := Parse(c.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.src, err)
			continue
		}
		if got := f.Match(rec); got != c.match {
			t.Errorf("Parse(%q).Match = %v, want %v", c.src, got, c.match)
		}
		again, err := Parse(f.Canonical())
		if err != nil || again.Canonical() != f.Canonical() || again.Match(rec) != c.match {
			t.Errorf("canonical form %q of %q does not round-trip: %v", f.Canonical(), c.src, err)
		}
	}
}

func TestParse_Failure(t *testing.T) {
	cases := []struct {
		src    string
		column int
		msg    string
	}{
		{`level`, 6, "expected =, !=, ~=, >, >=, <, <=, in, not in, contains or has"},
		{`message has "--"`, 13, "has needs a word"},
		{`message has 5`, 13, "expected a double-quoted string"},
		{`message contains i"x`, 19, "unterminated string"},
		{`level = i`, 9, "expected a double-quoted string"},
		{`level =`, 8, "expected a double-quoted string"},
		{`level = error`, 9, "expected a double-quoted string"},
		{`level = "error`, 9, "unterminated string"},
		{`level = "a" and`, 16, "expected a field name"},
		{`level = "a" #`, 13, "unexpected character"},
		{`level = "a" level = "b"`, 13, "expected and, or"},
		{`(level = "a"`, 13, "expected ')'"},
		{`level = "a")`, 12, "expected and, or"},
		{`level in "a"`, 10, "expected '['"},
		{`level in ["a" "b"]`, 15, "expected ',' or ']'"},
		{`level in ["a",]`, 15, "expected a double-quoted string"},
		{`level not "a"`, 11, "expected 'in' after 'not'"},
		{`level ~= "("`, 10, "bad regular expression"},
		{`level == "a"`, 8, "expected a double-quoted string"},
		{`level = "\x"`, 10, "unknown escape"},
		{`level = "\u12"`, 10, `\u needs four hex digits`},
		{"`level = \"a\"", 1, "unterminated `quoted field name`"},
		{"`` = \"a\"", 1, "empty `quoted field name`"},
		{`level # "a"`, 7, "unexpected character"},
		{"level = \"a\x01\"", 11, "control character"},
		{"level = \"\xff\"", 10, "not valid UTF-8"},
		{strings.Repeat("(", MaxDepth+1) + `a = "b"` + strings.Repeat(")", MaxDepth+1), MaxDepth + 1, "nests deeper"},
		{strings.Repeat("a", MaxLen+1), MaxLen + 1, "more than the limit"},
	}
	for _, c := range cases {
		_, err := Parse(c.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%.40q) = %v, want a SyntaxError", c.src, err)
			continue
		}
		if se.Column != c.column || !strings.Contains(se.Msg, c.msg) {
			t.Errorf("Parse(%.40q) = %q at column %d, want %q at column %d", c.src, se.Msg, se.Column, c.msg, c.column)
		}
	}
}

func TestEqualities(t *testing.T) {
	f, err := Parse(`level = "error" and (host = "a" or host = "b") and not app = "x" and region = "eu"`)
	if err != nil {
		t.Fatal(err)
	}
	got := f.Equalities()
	want := []Equality{{"level", "error"}, {"region", "eu"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Equalities = %v, want %v", got, want)
	}
	f, _ = Parse(`level = "error" or host = "a"`)
	if eq := f.Equalities(); len(eq) != 0 {
		t.Fatalf("Equalities of an or = %v, want none", eq)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		``, `level = "error"`, `a in ["x", "y"] and not (b ~= "^c.*" or d != "")`,
		"`weird key` not in [\"\\u00e9\"]", `((((a = "b"))))`, `a ~= "(?i)x{1000}"`,
		`not not not a = "\"\\"`, "a = \"\xff\"", `a in [`, `"unterminated`,
		`status >= 500`, `x < -1.5 or y <= "2"`, `n > 1e400`, `n = 42`,
		`msg has "disk full"`, `msg has i"Été"`, `msg contains i"X"`, `a in [i"x", "Y"]`, `a ~= i"^x"`, `a = i"`,
	} {
		f.Add(s)
	}
	rec := map[string]string{"a": "x", "b": "cc", "level": "error", "status": "503", "n": "42"}
	f.Fuzz(func(t *testing.T, src string) {
		flt, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Column < 1 || se.Column > len(src)+1 {
				t.Fatalf("Parse(%q): error %v has no column within the text", src, err)
			}
			return
		}
		canon := flt.Canonical()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, src, err)
		}
		if again.Canonical() != canon {
			t.Fatalf("canonical form is not stable: %q then %q", canon, again.Canonical())
		}
		if flt.Match(rec) != again.Match(rec) {
			t.Fatalf("%q and its canonical form %q disagree", src, canon)
		}
	})
}

// TestNumeric: ordering operators compare numbers; a value that is not a
// number never matches; a bare number is also an equality's text.
func TestNumeric(t *testing.T) {
	recs := []map[string]string{
		{"status": "200", "latency": "0.5"}, {"status": "404", "latency": "12"}, {"status": "500", "latency": "1e3"},
		{"status": "503", "latency": "-1"}, {"status": "n/a"}, {},
	}
	for src, want := range map[string][]int{
		`status >= 500`:                     {2, 3},
		`status > "404"`:                    {2, 3},
		`status < 300 or status >= 500`:     {0, 2, 3},
		`status >= 400 and status < 500`:    {1},
		`latency <= 1`:                      {0, 3},
		`latency > 100`:                     {2},
		`not status >= 0`:                   {4, 5},
		`status = 404`:                      {1},
		`status != 404 and latency >= -1.0`: {0, 2, 3},
		`(status>=500)and(latency<2000)`:    {2, 3},
	} {
		f, err := Parse(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		var got []int
		for i, r := range recs {
			if f.Match(r) {
				got = append(got, i)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s matched %v, want %v", src, got, want)
		}
		if again, err := Parse(f.Canonical()); err != nil || again.Canonical() != f.Canonical() {
			t.Errorf("%s: canonical %q does not parse back: %v", src, f.Canonical(), err)
		}
	}
	for src, col := range map[string]int{`status >= "high"`: 11, `status > `: 10, `status < x`: 10, `a ~= 5`: 6} {
		_, err := Parse(src)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Column != col {
			t.Errorf("Parse(%q) = %v, want a syntax error at column %d", src, err, col)
		}
	}
}
