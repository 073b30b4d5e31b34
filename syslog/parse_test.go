package syslog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// corpus holds lines as real senders write them, with the fields they must
// give. A field set to "" must be absent.
var corpus = []struct {
	name, line string
	ts         string // RFC 3339; "" means the receive time
	fields     map[string]string
}{
	{"RFC 5424 example 1", `<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed for lonvick on /dev/pts/8`,
		"2003-10-11T22:14:15.003Z", map[string]string{"facility": "auth", "severity": "crit", "level": "error", "hostname": "mymachine.example.com",
			"appname": "su", "procid": "", "msgid": "ID47", "message": "'su root' failed for lonvick on /dev/pts/8", "version": "1"}},
	{"RFC 5424 example 2, offset", `<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.`,
		"2003-08-24T12:14:15.000003Z", map[string]string{"facility": "local4", "severity": "notice", "hostname": "192.0.2.1", "appname": "myproc",
			"procid": "8710", "message": "%% It's time to make the do-nuts."}},
	{"RFC 5424 structured data with escapes", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Appl\"ication\]" eventID="1011"][examplePriority@32473 class="high"] An application event`,
		"2003-10-11T22:14:15.003Z", map[string]string{"sd.exampleSDID@32473.iut": "3", "sd.exampleSDID@32473.eventSource": `Appl"ication]`,
			"sd.examplePriority@32473.class": "high", "message": "An application event"}},
	{"RFC 5424 BOM in MSG", "<14>1 2026-11-25T10:00:00Z host app - - - \xEF\xBB\xBFunicode caf\xC3\xA9",
		"2026-11-25T10:00:00Z", map[string]string{"message": "unicode café", "severity": "info"}},
	{"RFC 5424 nil values", `<14>1 - - - - - -`, "", map[string]string{"hostname": "", "appname": "", "facility": "user", "message": ""}},
	{"rsyslog RFC 5424 template", `<30>1 2026-11-25T11:22:33.123456+00:00 web01 nginx 1234 - [meta sequenceId="7"] GET / 200`,
		"2026-11-25T11:22:33.123456Z", map[string]string{"hostname": "web01", "appname": "nginx", "procid": "1234", "sd.meta.sequenceId": "7", "message": "GET / 200"}},
	{"RFC 3164 example", `<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8`,
		"2026-10-11T22:14:15Z", map[string]string{"facility": "auth", "severity": "crit", "hostname": "mymachine", "appname": "su",
			"message": "'su root' failed for lonvick on /dev/pts/8", "parse_error": ""}},
	{"RFC 3164 no year, one-digit day", `<13>Jan  5 08:09:10 host sshd[4242]: Accepted publickey for root`,
		"2026-01-05T08:09:10Z", map[string]string{"hostname": "host", "appname": "sshd", "procid": "4242", "message": "Accepted publickey for root"}},
	{"RFC 3164 missing hostname", `<13>Jan  1 00:00:00 app[12]: no hostname here`,
		"2026-01-01T00:00:00Z", map[string]string{"appname": "app", "procid": "12", "message": "no hostname here"}},
	{"syslog-ng ISO timestamp in BSD format", `<13>2026-11-25T10:00:00.123+01:00 host app: iso in bsd`,
		"2026-11-25T09:00:00.123Z", map[string]string{"hostname": "host", "appname": "app", "message": "iso in bsd"}},
	{"Docker syslog driver (rfc3164)", `<30>Nov 25 10:00:00 dockerhost docker/abc123def456[999]: container says hi`,
		"2026-11-25T10:00:00Z", map[string]string{"hostname": "dockerhost", "appname": "docker/abc123def456", "procid": "999", "message": "container says hi"}},
	{"Docker syslog driver (rfc5424micro)", `<30>1 2026-11-25T10:00:00.123456Z dockerhost abc123def456 999 abc123def456 - container says hi`,
		"2026-11-25T10:00:00.123456Z", map[string]string{"hostname": "dockerhost", "appname": "abc123def456", "msgid": "abc123def456", "message": "container says hi"}},
	{"Cisco IOS is kept raw", `<189>: *Mar  1 18:46:11.123: %SYS-5-CONFIG_I: Configured from console by vty0`,
		"", map[string]string{"message": `<189>: *Mar  1 18:46:11.123: %SYS-5-CONFIG_I: Configured from console by vty0`, "facility": "local7"}},
	{"Python SysLogHandler with a tag (formatter \"%(name)s: %(message)s\"), NUL appended", "<14>myapp: hello from python\x00",
		"", map[string]string{"facility": "user", "severity": "info", "level": "info", "appname": "myapp", "message": "hello from python", "hostname": "", "parse_error": ""}},
	{"Python SysLogHandler, default formatter", "<11>Traceback (most recent call last): boom",
		"", map[string]string{"severity": "err", "level": "error", "message": "Traceback (most recent call last): boom", "appname": "", "parse_error": ""}},
	{"a bare tag with a pid", "<13>worker[42]: job done", "", map[string]string{"appname": "worker", "procid": "42", "message": "job done"}},
	{"Go log/syslog over the network", "<11>2026-11-25T10:00:00+01:00 host1 gotag[123]: from go",
		"2026-11-25T09:00:00Z", map[string]string{"hostname": "host1", "appname": "gotag", "procid": "123", "message": "from go", "severity": "err"}},
	{"no priority", `hello world`, "", map[string]string{"message": "hello world"}},
	{"bad priority", `<999>1 bad`, "", map[string]string{"message": "<999>1 bad"}},
	{"unclosed structured data", `<34>1 2003-10-11T22:14:15.003Z host app - - [unclosed sd`,
		"2003-10-11T22:14:15.003Z", map[string]string{"message": `<34>1 2003-10-11T22:14:15.003Z host app - - [unclosed sd`, "hostname": "host"}},
	{"invalid UTF-8 is replaced", "<14>1 - host app - - - caf\xE9", "", map[string]string{"message": "caf\uFFFD"}},
	{"NUL and trailing newline", "<14>Nov 25 10:00:00 host app: x\n\x00", "2026-11-25T10:00:00Z", map[string]string{"message": "x"}},
}

func TestParse_Corpus(t *testing.T) {
	p := NewParser()
	for _, c := range corpus {
		t.Run(c.name, func(t *testing.T) {
			r := p.Parse([]byte(c.line), now)
			want := now
			if c.ts != "" {
				want, _ = time.Parse(time.RFC3339Nano, c.ts)
			}
			if !r.Timestamp.Equal(want) {
				t.Errorf("timestamp %s, want %s", r.Timestamp.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
			}
			for k, v := range c.fields {
				got, ok := r.Fields[k]
				if v == "" && ok && k != "message" {
					t.Errorf("field %s = %q, want none", k, got)
				} else if v != "" && got != v {
					t.Errorf("field %s = %q, want %q (all: %v)", k, got, v, r.Fields)
				}
			}
			_, hasErr := r.Fields["parse_error"]
			if raw := r.Fields["message"] == c.line; raw != hasErr && c.fields["message"] == c.line {
				t.Errorf("a message stored raw must say why: %v", r.Fields)
			}
			if err := r.Validate(); err != nil {
				t.Errorf("record out of limits: %v", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range corpus {
		f.Add([]byte(c.line))
	}
	// More structured-data parameters than a record has fields, and an
	// SD-ID longer than a field name may be.
	var many strings.Builder
	many.WriteString("<13>1 - h app - - [x")
	for i := range 300 {
		fmt.Fprintf(&many, " p%d=\"v\"", i)
	}
	many.WriteString("] m")
	f.Add([]byte(many.String()))
	f.Add([]byte("<13>1 - h app - - [" + strings.Repeat("n", 300) + " a=\"b\"] m"))
	p := NewParser()
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 64<<10 {
			return
		}
		r := p.Parse(msg, now)
		if err := r.Validate(); err != nil {
			t.Fatalf("Parse(%q) gave a record out of limits: %v", msg, err)
		}
		if _, ok := r.Fields["parse_error"]; ok && r.Fields["message"] == "" && len(bytes.TrimRight(msg, "\r\n\x00")) > 0 {
			t.Fatalf("Parse(%q) failed and did not keep the raw text: %v", msg, r.Fields)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ name, line string }{
		{"rfc5424", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry with some more text`},
		{"rfc3164", `<34>Oct 11 22:14:15 mymachine sshd[4242]: Accepted publickey for root from 192.0.2.7 port 51234 ssh2: ED25519 SHA256:abc`},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := NewParser()
			msg := []byte(c.line)
			for b.Loop() {
				p.Parse(msg, now)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
