package filter

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// TestAgainstBruteForce parses random filters and checks their matches on
// random records against the same condition written directly in Go.
func TestAgainstBruteForce(t *testing.T) {
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 2))
		src, want := randomFilter(rng, 0)
		f, err := Parse(src)
		if err != nil {
			t.Fatalf("seed %d: Parse(%q): %v", seed, src, err)
		}
		canon, err := Parse(f.Canonical())
		if err != nil {
			t.Fatalf("seed %d: canonical %q: %v", seed, f.Canonical(), err)
		}
		for range 200 {
			rec := randomRecord(rng)
			if got, w := f.Match(rec), want(rec); got != w {
				t.Fatalf("seed %d: %q on %v = %v, want %v", seed, src, rec, got, w)
			}
			if canon.Match(rec) != want(rec) {
				t.Fatalf("seed %d: canonical %q of %q on %v disagrees", seed, f.Canonical(), src, rec)
			}
		}
	}
}

var (
	randomWords  = []string{"disk", "full", "Disk", "FULL", "error", "ok", "x_1", "é", "Été"}
	randomFields = []string{"a", "b", "n"}
)

func randomRecord(rng *rand.Rand) map[string]string {
	rec := map[string]string{}
	for _, f := range randomFields {
		switch rng.IntN(4) {
		case 0: // missing
		case 1:
			rec[f] = strconv.Itoa(rng.IntN(20) - 5)
		default:
			var words []string
			for range rng.IntN(4) {
				words = append(words, randomWords[rng.IntN(len(randomWords))])
			}
			rec[f] = strings.Join(words, []string{" ", ", ", "-", "  "}[rng.IntN(4)])
		}
	}
	return rec
}

// randomFilter returns a filter's text and the condition it states.
func randomFilter(rng *rand.Rand, depth int) (string, func(map[string]string) bool) {
	if depth < 3 && rng.IntN(3) == 0 {
		l, lf := randomFilter(rng, depth+1)
		r, rf := randomFilter(rng, depth+1)
		switch rng.IntN(3) {
		case 0:
			return "(" + l + " and " + r + ")", func(m map[string]string) bool { return lf(m) && rf(m) }
		case 1:
			return "(" + l + " or " + r + ")", func(m map[string]string) bool { return lf(m) || rf(m) }
		default:
			return "not (" + l + ")", func(m map[string]string) bool { return !lf(m) }
		}
	}
	field := randomFields[rng.IntN(len(randomFields))]
	word := randomWords[rng.IntN(len(randomWords))]
	fold := rng.IntN(3) == 0
	q := strconv.Quote(word)
	if fold {
		q = "i" + q
	}
	lower := func(s string) string {
		if fold {
			return strings.ToLower(s)
		}
		return s
	}
	num := rng.IntN(20) - 5
	switch rng.IntN(8) {
	case 0:
		return field + " = " + q, func(m map[string]string) bool { return lower(m[field]) == lower(word) }
	case 1:
		return field + " != " + q, func(m map[string]string) bool { return lower(m[field]) != lower(word) }
	case 2:
		return field + " contains " + q, func(m map[string]string) bool { return strings.Contains(lower(m[field]), lower(word)) }
	case 3:
		w2 := randomWords[rng.IntN(len(randomWords))]
		phrase := word + " " + w2
		src := strconv.Quote(phrase)
		if fold {
			src = "i" + src
		}
		return field + " has " + src, func(m map[string]string) bool {
			vs := strings.FieldsFunc(lower(m[field]), func(r rune) bool { return !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)) })
			for i := 0; i+1 < len(vs); i++ {
				if vs[i] == lower(word) && vs[i+1] == lower(w2) {
					return true
				}
			}
			return false
		}
	case 4:
		re := "^" + regexp.QuoteMeta(word)
		src := strconv.Quote(re)
		if fold {
			src = "i" + src
		}
		return field + " ~= " + src, func(m map[string]string) bool { return strings.HasPrefix(lower(m[field]), lower(word)) }
	case 5:
		list := []string{word, randomWords[rng.IntN(len(randomWords))]}
		var quoted []string
		for _, w := range list {
			quoted = append(quoted, map[bool]string{true: "i", false: ""}[fold]+strconv.Quote(w))
		}
		return fmt.Sprintf("%s in [%s]", field, strings.Join(quoted, ", ")), func(m map[string]string) bool {
			return slices.ContainsFunc(list, func(w string) bool { return lower(m[field]) == lower(w) })
		}
	case 6:
		return fmt.Sprintf("%s >= %d", field, num), func(m map[string]string) bool {
			x, err := strconv.Atoi(m[field])
			return err == nil && x >= num
		}
	default:
		return fmt.Sprintf("%s < %d", field, num), func(m map[string]string) bool {
			x, err := strconv.Atoi(m[field])
			return err == nil && x < num
		}
	}
}
