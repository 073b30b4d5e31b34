package syslog

import (
	"maps"
	"strings"
	"testing"
)

// fastSeeds are well-formed RFC 5424 messages of the shapes senders use.
var fastSeeds = []string{
	`<165>1 2026-11-25T10:00:00.123Z web01.example.net nginx 4242 ACCESS [req@1 id="abc"] GET /index.html 200 1534 0.004`,
	`<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8`,
	`<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.`,
	`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ` + "\uFEFF" + `An application event log entry...`,
	`<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
	`<0>1 - - - - - -`,
	`<191>1 1970-01-01T00:00:00Z h a p m - `,
	`<13>1 2026-01-02T03:04:05+01:00 h app - - [a b=""] msg`,
	`<13>1 2026-01-02T03:04:05.1234567Z h app - - - seven fraction digits: goes to the library`,
	`<13>1 2026-01-02T03:04:05Z h app - - [a b="x\"y"] an escape goes to the library`,
	`<13>1 2026-01-02T03:04:05Z h app - - [a b="1"][a c="2"] a repeated SD-ID goes to the library`,
	`<13>2 2026-01-02T03:04:05Z h app - - - version 2 goes to the library`,
	`<13>1 2026-01-02T03:04:05Z h app - - - ` + "\xff\xfe invalid UTF-8",
	`<13>1 2026-01-02T03:04:05-00:00 h app - - - negative zero offset`,
	`<13>1 2024-02-29T23:59:59.999999+14:00 h app - - - leap day`,
	`<13>1 2023-02-29T00:00:00Z h app - - - no such day: goes to the library`,
	`<13>1 2023-01-01T23:59:60Z h app - - - a leap second: goes to the library`,
	`<13>1 2261-12-31T23:59:59Z h app - - - the last year`,
	`<13>1 2262-01-01T00:00:00Z h app - - - past the last year`,
	`<13>1 1969-12-31T23:59:59Z h app - - - before 1970`,
}

// FuzzParse5424 checks the hand-written reader against go-syslog: every
// message it accepts, the library reads into the same record.
func FuzzParse5424(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	for _, c := range corpus {
		f.Add([]byte(c.line))
	}
	p := NewParser()
	f.Fuzz(func(t *testing.T, msg []byte) {
		fast, ok := parse5424(msg, now)
		if !ok {
			return
		}
		slow := p.parse(msg, now)
		if !maps.Equal(fast.Fields, slow.Fields) || !fast.Timestamp.Equal(slow.Timestamp) {
			t.Fatalf("%q:\nfast %v %v\nlibrary %v %v", msg, fast.Timestamp, fast.Fields, slow.Timestamp, slow.Fields)
		}
		if err := fast.Validate(); err != nil {
			t.Fatalf("%q: %v", msg, err)
		}
	})
}

func TestParse5424_TakesTheCommonShapes(t *testing.T) {
	for i, s := range fastSeeds {
		_, ok := parse5424([]byte(s), now)
		if want := !strings.Contains(s, "goes to the library"); ok != want {
			t.Errorf("seed %d %q: taken %v, want %v", i, s, ok, want)
		}
	}
}

func BenchmarkParse5424(b *testing.B) {
	msg := []byte(fastSeeds[0])
	p := NewParser()
	for _, path := range []struct {
		name  string
		parse func()
	}{
		{"hand-written", func() { parse5424(msg, now) }},
		{"go-syslog", func() { p.parse(msg, now) }},
	} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				path.parse()
			}
		})
	}
}
