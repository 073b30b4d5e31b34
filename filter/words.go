package filter

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Words are runs of letters, digits and underscores; everything else
// separates them. has matches a phrase against them.

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// nextWord returns the bounds of the first word of s at or after i, or
// start -1 when there is none.
func nextWord(s string, i int) (start, end int) {
	start = -1
	for i < len(s) {
		r, n := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(s[i:])
		}
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			return start, i
		}
		i += n
	}
	if start < 0 {
		return -1, -1
	}
	return start, len(s)
}

// words splits s into its words.
func words(s string) []string {
	var out []string
	for i := 0; ; {
		start, end := nextWord(s, i)
		if start < 0 {
			return out
		}
		out = append(out, s[start:end])
		i = end
	}
}

// EachWord calls fn with each word of s, as has splits it.
func EachWord(s string, fn func(string)) {
	for i := 0; ; {
		start, end := nextWord(s, i)
		if start < 0 {
			return
		}
		fn(s[start:end])
		i = end
	}
}

// hasPhrase reports whether the words of v hold ws, one after the other.
func hasPhrase(v string, ws []string, fold bool) bool {
	if !fold && !strings.Contains(v, ws[0]) {
		return false // the common miss, found without splitting v
	}
	for i := 0; ; {
		start, end := nextWord(v, i)
		if start < 0 {
			return false
		}
		if phraseAt(v, start, ws, fold) {
			return true
		}
		i = end
	}
}

// phraseAt reports whether the words of v from i on begin with ws.
func phraseAt(v string, i int, ws []string, fold bool) bool {
	for _, w := range ws {
		start, end := nextWord(v, i)
		if start < 0 || !(v[start:end] == w || fold && strings.EqualFold(v[start:end], w)) {
			return false
		}
		i = end
	}
	return true
}
