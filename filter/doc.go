// Package filter parses and evaluates the filter language of queries and
// live tails:
//
//	field = "v"    field != "v"    field ~= "regex"
//	field in ["a", "b"]            field not in ["a", "b"]
//	field > 500    field >= 1.5    field < -1    field <= "2"
//	field contains "text"          field has "words in a row"
//	field = i"ERROR"               message has i"connection refused"
//
// The ordering operators compare numbers: the operand is a number (bare or
// quoted) and a value that does not read as one never matches. A bare
// number is also accepted as the text of = and !=. contains looks for the
// text anywhere in the value; has looks for whole words: the value's words
// (runs of letters, digits and _) hold the operand's words one after the
// other, whatever separates them ("disk full" has "disk full" and
// "full: disk, full" does too, "diskful" does not). A string written
// i"..." compares ignoring case, with =, !=, in, not in, contains, has and
// ~= alike. Comparisons are
// combined with and, or, not and parentheses (not binds tighter than and,
// and tighter than or). An empty filter matches every record. Field names
// are bare words of letters, digits and _ . - @, or any text between
// backticks. Strings are double-quoted with JSON escapes. A field a record
// does not have compares as the empty string.
//
// The language is small and specific to flowg, so it is parsed by hand here
// (a recursive-descent parser) rather than with a generator; every error
// names the column where it was found.
package filter
