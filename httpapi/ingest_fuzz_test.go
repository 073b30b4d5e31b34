package httpapi

import (
	"encoding/json"
	"maps"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseStruct checks that a body either fails with an error or gives
// records within the limits that survive a round trip: written back as flat
// JSON objects, they parse to the same fields and times.
func FuzzParseStruct(f *testing.F) {
	for _, s := range []string{
		`{"records":[{"level":"info","message":"hi"}]}`,
		`{"records":[{"a":{"b":{"c":1}},"t":true,"n":null,"arr":[1,{"x":2}]}]}`,
		`{"records":[{"timestamp":"2026-01-01T00:00:00.123456789+02:00"},{"@timestamp":1767225600123}]}`,
		`{"records":[{"timestamp":-1}]}`, `{"records":[{"timestamp":1e400}]}`, `{"records":[{"a":"\ud800"}]}`,
		`{"records":[]}`, `{"records":null}`, `[]`, `{"records":[{"":""}]}`, "{\"records\":[{\"a\":\"\xff\"}]}",
		"{\"a\":1}\n{\"b\":2}\n", "\n\n", `{"records":[{"a.b":"1","a":{"b":"2"}}]}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		recs, err := ParseStruct(body, ndjson, now)
		if err != nil {
			return
		}
		objs := make([]map[string]string, len(recs))
		for i, r := range recs {
			if err := r.Validate(); err != nil {
				t.Fatalf("record %d passed parsing but not Validate: %v", i, err)
			}
			for k, v := range r.Fields {
				if !utf8.ValidString(k) || !utf8.ValidString(v) {
					t.Fatalf("record %d has invalid UTF-8 in %q", i, k)
				}
			}
			objs[i] = r.Fields
		}
		again, err := json.Marshal(map[string]any{"records": objs})
		if err != nil {
			t.Fatal(err)
		}
		recs2, err := ParseStruct(again, false, now)
		if err != nil {
			t.Fatalf("written back, %s does not parse: %v", again, err)
		}
		for i := range recs {
			if !maps.Equal(recs[i].Fields, recs2[i].Fields) || !recs[i].Timestamp.Equal(recs2[i].Timestamp) {
				t.Fatalf("record %d changed in the round trip: %v at %s, then %v at %s", i,
					recs[i].Fields, recs[i].Timestamp, recs2[i].Fields, recs2[i].Timestamp)
			}
		}
	})
}

// FuzzParseText checks that accepted lines are stored whole and within limits.
func FuzzParseText(f *testing.F) {
	for _, s := range []string{"a\nb\r\n\n", "\xff\n", "", "\r\n", "x\x00y\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := ParseText(body, time.Unix(0, 0))
		if err != nil {
			return
		}
		for _, r := range recs {
			if err := r.Validate(); err != nil || len(r.Fields) != 1 || r.Fields["message"] == "" {
				t.Fatalf("bad record %v: %v", r.Fields, err)
			}
		}
	})
}
