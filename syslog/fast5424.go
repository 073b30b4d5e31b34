package syslog

import (
	"strings"
	"time"
	"unicode/utf8"

	flowg "github.com/flowg-server/flowg-server"
)

// parse5424 reads a well-formed RFC 5424 message with one allocation
// beyond the record's map (the message's text, which every field then
// shares). It is written by hand because go-syslog's state machine, which
// stays the parser of everything else, allocates a string per header
// field, a message struct and maps for structured data (about 2 µs a
// message here), while the syslog path should cost what the HTTP path costs
// per record. It accepts only what it reads exactly as go-syslog does
// (FuzzParse5424 checks every message it accepts against the library):
// anything unusual — an escape in a parameter value, a repeated SD-ID or
// parameter, a version other than 1, a timestamp Go does not read — makes
// it return false, and the library parses the message as before. What it
// returns always fits the record limits.
func parse5424(msg []byte, now time.Time) (flowg.Record, bool) {
	if len(msg) > flowg.MaxFieldValueLen || len(msg) < 4 || msg[0] != '<' {
		return flowg.Record{}, false
	}
	s := string(msg)
	// PRI and VERSION: "<" 1*3DIGIT ">" "1" SP.
	pri, i := 0, 1
	for i < len(s) && i <= 3 && s[i] >= '0' && s[i] <= '9' {
		pri = pri*10 + int(s[i]-'0')
		i++
	}
	if i == 1 || i > 4 || i >= len(s) || s[i] != '>' || pri > 191 || s[1] == '0' && i > 2 {
		return flowg.Record{}, false
	}
	s = s[i+1:]
	if !strings.HasPrefix(s, "1 ") {
		return flowg.Record{}, false
	}
	s = s[2:]
	rec := flowg.Record{Timestamp: now, Fields: make(map[string]string, 10)}
	f := rec.Fields
	f["facility"], f["severity"], f["level"], f["version"] = facilityNames[pri>>3], severityNames[pri&7], severityLevel[pri&7], "1"

	// TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP.
	ts, s, ok := token(s, 64)
	if !ok || !timestamp(ts, now, &rec.Timestamp) {
		return flowg.Record{}, false
	}
	for _, h := range [...]struct {
		name string
		max  int
	}{{"hostname", 255}, {"appname", 48}, {"procid", 128}, {"msgid", 32}} {
		var v string
		if v, s, ok = token(s, h.max); !ok {
			return flowg.Record{}, false
		}
		if v != "-" {
			f[h.name] = v
		}
	}
	// STRUCTURED-DATA: "-" or SD-ELEMENTs.
	if strings.HasPrefix(s, "-") {
		s = s[1:]
	} else if s, ok = structuredData(s, f); !ok {
		return flowg.Record{}, false
	}
	// [SP MSG]
	switch {
	case s == "" || s == " ": // no MSG
	case s[0] == ' ':
		m := strings.TrimPrefix(s[1:], "\uFEFF")
		if !utf8.ValidString(m) {
			m = strings.ToValidUTF8(m, "\uFFFD")
		}
		f["message"] = m
	default:
		return flowg.Record{}, false
	}
	return rec, true
}

// token returns the header field at the start of s (1 to max printable
// US-ASCII characters) and what follows the space after it.
func token(s string, max int) (tok, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] != ' ' {
		if s[i] < 33 || s[i] > 126 {
			return "", "", false
		}
		i++
	}
	if i == 0 || i > max || i == len(s) {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// timestamp reads an RFC 5424 TIMESTAMP ("-": none) into t, in UTC, when
// it lies in 1970..2261 (else t keeps the receive time, as the library
// path does). It declines the forms it does not read as the library does:
// more than 6 fraction digits, lower-case T or Z, no seconds.
func timestamp(ts string, now time.Time, t *time.Time) bool {
	if ts == "-" {
		return true
	}
	// YYYY-MM-DDTHH:MM:SS[.1*6DIGIT](Z|+HH:MM|-HH:MM)
	if len(ts) < 20 || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' || ts[13] != ':' || ts[16] != ':' {
		return false
	}
	rest := ts[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 7 {
			return false
		}
		rest = rest[n:]
	}
	if rest != "Z" && (len(rest) != 6 || rest[0] != '+' && rest[0] != '-' || rest[3] != ':' ||
		rest[1:3] > "23" || rest[4:6] > "59") { // Go reads +24:00, the library does not
		return false
	}
	parsed, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return false
	}
	if u := parsed.UTC(); u.Year() >= 1970 && u.Year() <= 2261 {
		*t = u
	}
	return true
}

// structuredData reads SD-ELEMENTs into f as sd.<id>.<param> and returns
// what follows them.
func structuredData(s string, f map[string]string) (string, bool) {
	var ids [16]string // the SD-IDs read: one seen again goes to the library
	n := 0
	for strings.HasPrefix(s, "[") {
		id, rest, ok := sdName(s[1:])
		if !ok || n == len(ids) {
			return "", false
		}
		for _, seen := range ids[:n] {
			if seen == id {
				return "", false
			}
		}
		ids[n] = id
		n++
		s = rest
		prefix := "sd." + id + "."
		for strings.HasPrefix(s, " ") {
			var name string
			if name, s, ok = sdName(s[1:]); !ok || !strings.HasPrefix(s, `="`) {
				return "", false
			}
			s = s[2:]
			end := strings.IndexAny(s, "\"\\]")
			if end < 0 || s[end] != '"' || !utf8.ValidString(s[:end]) {
				return "", false // an escape, a bare ] or no end: the library's
			}
			key := prefix + name
			if _, dup := f[key]; dup || len(f) >= flowg.MaxFieldsPerRecord-2 {
				return "", false
			}
			f[key] = s[:end]
			s = s[end+1:]
		}
		if !strings.HasPrefix(s, "]") {
			return "", false
		}
		s = s[1:]
	}
	return s, n > 0
}

// sdName returns the SD-NAME at the start of s (1 to 32 printable US-ASCII
// characters but = SP ] ") and the rest.
func sdName(s string) (name, rest string, ok bool) {
	i := 0
	for i < len(s) && s[i] > 32 && s[i] < 127 && s[i] != '=' && s[i] != ']' && s[i] != '"' {
		i++
	}
	if i == 0 || i > 32 {
		return "", "", false
	}
	return s[:i], s[i:], true
}
