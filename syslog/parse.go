package syslog

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gosyslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"

	flowg "github.com/flowg-server/flowg-server"
)

// Parser turns one syslog message into a record. It is not safe for
// concurrent use; give each goroutine its own.
type Parser struct {
	rfc5424 gosyslog.Machine
	rfc3164 gosyslog.Machine
}

// NewParser returns a parser. BSD messages without a year get the current
// one; their times are read as UTC.
func NewParser() *Parser {
	return &Parser{
		rfc5424: rfc5424.NewParser(rfc5424.WithBestEffort()),
		rfc3164: rfc3164.NewParser(rfc3164.WithBestEffort(), rfc3164.WithYear(rfc3164.CurrentYear{}),
			rfc3164.WithTimezone(time.UTC), rfc3164.WithRFC3339(), rfc3164.WithSecondFractions()),
	}
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// severityLevel maps syslog severities to the level field every stream
// indexes by default.
var severityLevel = [8]string{"error", "error", "error", "error", "warn", "info", "info", "debug"}

// Parse parses msg, received at now. A message that does not parse is kept:
// its raw text goes to "message" and the reason to "parse_error". The
// record always fits the record limits (flowg.Record.Validate): one that
// would not is stored as its raw text, cut to the field value limit, with
// the reason in "parse_error", so that it never fails the batch it is
// stored with.
func (p *Parser) Parse(msg []byte, now time.Time) flowg.Record {
	msg = bytes.TrimRight(msg, "\r\n\x00")
	if rec, ok := parse5424(msg, now); ok {
		return rec // the common case, read without the library
	}
	rec := p.parse(msg, now)
	if err := rec.Validate(); err != nil {
		raw := validUTF8(msg)
		rec = flowg.Record{Timestamp: rec.Timestamp, Fields: map[string]string{
			"parse_error": "message breaks a record limit, stored raw: " + err.Error(),
		}}
		if len(raw) > flowg.MaxFieldValueLen {
			// Cut at the limit; a rune cut in two is dropped.
			raw = strings.ToValidUTF8(raw[:flowg.MaxFieldValueLen], "")
			rec.Fields["truncated"] = "true"
		}
		rec.Fields["message"] = raw
		if rec.Validate() != nil { // a timestamp out of range: the receive time
			rec.Timestamp = now
		}
	}
	return rec
}

func (p *Parser) parse(msg []byte, now time.Time) flowg.Record {
	rec := flowg.Record{Timestamp: now, Fields: make(map[string]string, 12)}
	machine := p.machineFor(msg)
	m, err := machine.Parse(msg)
	if err != nil && machine == p.rfc3164 {
		if ok := parseBare(msg, rec.Fields); ok {
			return rec
		}
	}
	base, ok := baseOf(m)
	if !ok || base.Priority == nil {
		if err == nil {
			err = fmt.Errorf("no priority")
		}
		rec.Fields["message"] = validUTF8(msg)
		rec.Fields["parse_error"] = err.Error()
		return rec
	}
	f := rec.Fields
	f["facility"] = deref(base.FacilityLevel())
	f["severity"] = deref(base.SeverityShortLevel())
	f["level"] = severityLevel[*base.Severity&7]
	set := func(k string, v *string) {
		if v != nil && *v != "" && *v != "-" {
			f[k] = validUTF8([]byte(*v))
		}
	}
	set("hostname", base.Hostname)
	set("appname", base.Appname)
	set("procid", base.ProcID)
	set("msgid", base.MsgID)
	if base.Message != nil {
		f["message"] = validUTF8(bytes.TrimPrefix([]byte(*base.Message), bom))
	}
	if base.Timestamp != nil && !base.Timestamp.IsZero() {
		if ts := base.Timestamp.UTC(); ts.Year() >= 1970 && ts.Year() <= 2261 {
			rec.Timestamp = ts
		}
	}
	if err != nil {
		// Best effort kept the fields before the error; keep the whole text too.
		f["message"] = validUTF8(msg)
		f["parse_error"] = err.Error()
	}
	if m5, ok := m.(*rfc5424.SyslogMessage); ok {
		f["version"] = strconv.Itoa(int(m5.Version))
		if m5.StructuredData != nil {
			for id, params := range *m5.StructuredData {
				for k, v := range params {
					if len(f) >= flowg.MaxFieldsPerRecord-1 { // room for parse_error
						f["parse_error"] = fmt.Sprintf("more than %d structured data parameters; the rest were dropped", flowg.MaxFieldsPerRecord)
						return rec
					}
					f["sd."+id+"."+k] = validUTF8([]byte(v))
				}
			}
		}
	}
	return rec
}

// bareRE is the rest of a message with a priority and no header, as
// Python's logging.handlers.SysLogHandler and many small clients send it:
// "<14>tag[pid]: message", "<14>tag: message" or "<14>message".
var bareRE = regexp.MustCompile(`^([A-Za-z0-9_./-]{1,48})(?:\[([0-9]{1,10})\])?: (.*)$`)

var months = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseBare reads a message that has a priority but no timestamp or host
// (the time is the receive time). It declines a message whose header
// starts like a timestamp or a Cisco sequence, which is then a BSD message
// that did not parse and is kept raw.
func parseBare(msg []byte, f map[string]string) bool {
	end := bytes.IndexByte(msg, '>')
	if len(msg) < 3 || msg[0] != '<' || end < 2 || end > 4 {
		return false
	}
	pri, err := strconv.Atoi(string(msg[1:end]))
	if err != nil || pri < 0 || pri > 191 {
		return false
	}
	rest := msg[end+1:]
	if len(rest) > 0 && (rest[0] >= '0' && rest[0] <= '9' || rest[0] == ':') { // a timestamp, a Cisco sequence or ": *Mar 1"
		return false
	}
	for _, mo := range months {
		if bytes.HasPrefix(rest, []byte(mo+" ")) {
			return false
		}
	}
	f["facility"], f["severity"], f["level"] = facilityNames[pri>>3], severityNames[pri&7], severityLevel[pri&7]
	rest = bytes.TrimPrefix(rest, bom)
	if m := bareRE.FindSubmatch(rest); m != nil {
		f["appname"] = string(m[1])
		if len(m[2]) > 0 {
			f["procid"] = string(m[2])
		}
		rest = m[3]
	}
	f["message"] = validUTF8(rest)
	return true
}

var facilityNames = [24]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
	"authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1", "local2", "local3", "local4",
	"local5", "local6", "local7"}

var severityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// machineFor detects the format: RFC 5424 has a version digit right after
// the priority ("<34>1 ...").
func (p *Parser) machineFor(msg []byte) gosyslog.Machine {
	if i := bytes.IndexByte(msg, '>'); i > 0 && i <= 4 && len(msg) > i+2 && msg[i+1] >= '1' && msg[i+1] <= '9' && msg[i+2] == ' ' {
		return p.rfc5424
	}
	return p.rfc3164
}

func baseOf(m gosyslog.Message) (*gosyslog.Base, bool) {
	switch m := m.(type) {
	case *rfc5424.SyslogMessage:
		if m == nil {
			return nil, false
		}
		return &m.Base, true
	case *rfc3164.SyslogMessage:
		if m == nil {
			return nil, false
		}
		return &m.Base, true
	}
	return nil, false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// validUTF8 returns b as a string with invalid bytes replaced by U+FFFD.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
