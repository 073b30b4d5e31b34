package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	flowg "github.com/flowg-server/flowg-server"
)

// maxJSONDepth bounds the nesting of an ingested object.
const maxJSONDepth = 32

// StructOptions say how a struct body is read.
type StructOptions struct {
	// NDJSON: one JSON object per line, instead of {"records":[...]} or a
	// bare array.
	NDJSON bool
	// TimeField names the field that holds the record's time; empty tries
	// TimeFields in order.
	TimeField string
}

// TimeFields are the fields a record's time is read from when no field is
// named, first found first: "timestamp" and "@timestamp" must parse (an
// error otherwise); the others, common in shippers' output, set the time
// when they parse and are kept as plain fields when they do not.
var TimeFields = []string{"timestamp", "@timestamp", "time", "ts", "_time", "date"}

// ParseStruct parses the body of a struct ingest: {"records":[{...}, ...]},
// a bare array [{...}, ...], or, when ndjson is true, one JSON object per
// line. See ParseStructWith.
func ParseStruct(body []byte, ndjson bool, now time.Time) ([]flowg.Record, error) {
	return ParseStructWith(body, StructOptions{NDJSON: ndjson}, now)
}

// ParseStructWith parses a struct body. Nested objects flatten to dotted
// keys, numbers and booleans to their text, arrays to their JSON text; null
// fields are dropped. The time comes from opts.TimeField or TimeFields (RFC
// 3339, or a Unix epoch in s, ms, µs or ns), else now. Every record is
// checked against the field limits; the first problem fails the whole body.
func ParseStructWith(body []byte, opts StructOptions, now time.Time) ([]flowg.Record, error) {
	var p fastjson.Parser
	if !opts.NDJSON {
		v, err := p.ParseBytes(body)
		if err != nil {
			return nil, fmt.Errorf("bad JSON body: %v", err)
		}
		var arr []*fastjson.Value
		switch v.Type() {
		case fastjson.TypeArray:
			arr, _ = v.Array()
		case fastjson.TypeObject:
			recsV := v.Get("records")
			if recsV == nil {
				return nil, errors.New(`body has no "records" array`)
			}
			if arr, err = recsV.Array(); err != nil {
				return nil, errors.New(`"records" must be an array of objects`)
			}
		default:
			return nil, errors.New(`body must be a JSON object {"records": [...]} or an array of objects`)
		}
		if len(arr) > flowg.MaxBatchRecords {
			return nil, fmt.Errorf("%w: %d records, more than the limit of %d", flowg.ErrTooLarge, len(arr), flowg.MaxBatchRecords)
		}
		recs := make([]flowg.Record, 0, len(arr))
		for i, rv := range arr {
			rec, err := toRecord(rv, opts.TimeField, now)
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			recs = append(recs, rec)
		}
		return recs, nil
	}
	var recs []flowg.Record
	for line := 1; len(body) > 0; line++ {
		var l []byte
		l, body, _ = bytes.Cut(body, []byte{'\n'})
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		if len(recs) == flowg.MaxBatchRecords {
			return nil, fmt.Errorf("%w: more than %d records", flowg.ErrTooLarge, flowg.MaxBatchRecords)
		}
		v, err := p.ParseBytes(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: bad JSON: %v", line, err)
		}
		rec, err := toRecord(v, opts.TimeField, now)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

func toRecord(v *fastjson.Value, timeField string, now time.Time) (flowg.Record, error) {
	o, err := v.Object()
	if err != nil {
		return flowg.Record{}, fmt.Errorf("is a JSON %s, not an object", v.Type())
	}
	rec := flowg.Record{Timestamp: now, Fields: make(map[string]string, o.Len())}
	if err := flatten(rec.Fields, "", o, 0); err != nil {
		return rec, err
	}
	if timeField != "" {
		if s, ok := rec.Fields[timeField]; ok {
			jv := o.Get(timeField) // a key with dots, or nested objects
			if jv == nil {
				jv = v.Get(strings.Split(timeField, ".")...)
			}
			t, err := parseTime(s, jv)
			if err != nil {
				return rec, fmt.Errorf("field %q: %w", timeField, err)
			}
			rec.Timestamp = t
		}
		return rec, rec.Validate()
	}
	for i, k := range TimeFields {
		s, ok := rec.Fields[k]
		if !ok {
			continue
		}
		t, err := parseTime(s, o.Get(k))
		if err != nil {
			if i < 2 { // timestamp and @timestamp must be times
				return rec, fmt.Errorf("field %q: %w", k, err)
			}
			continue
		}
		rec.Timestamp = t
		break
	}
	return rec, rec.Validate()
}

func flatten(out map[string]string, prefix string, o *fastjson.Object, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("objects nest deeper than %d levels", maxJSONDepth)
	}
	var err error
	o.Visit(func(k []byte, v *fastjson.Value) {
		if err != nil {
			return
		}
		key := prefix + string(k) // UTF-8 is checked with the limits (Record.Validate)
		if len(out) >= flowg.MaxFieldsPerRecord {
			err = fmt.Errorf("more than %d fields", flowg.MaxFieldsPerRecord)
			return
		}
		switch v.Type() {
		case fastjson.TypeObject:
			inner, _ := v.Object()
			err = flatten(out, key+".", inner, depth+1)
		case fastjson.TypeNull:
		default:
			var s string
			if v.Type() == fastjson.TypeString {
				s = string(v.GetStringBytes())
			} else { // numbers and booleans as their text, arrays as JSON
				s = string(v.MarshalTo(nil))
			}
			out[key] = s
		}
	})
	return err
}

// parseTime reads a timestamp field: RFC 3339 text, or a Unix epoch as a
// number or digits whose magnitude tells the unit (s, ms, µs, ns).
func parseTime(s string, v *fastjson.Value) (time.Time, error) {
	if v != nil && v.Type() == fastjson.TypeString {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), nil
		}
	}
	return parseEpoch(s)
}

// parseEpoch reads a Unix epoch whose magnitude tells the unit (s, ms, µs,
// ns).
func parseEpoch(s string) (time.Time, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return time.Time{}, fmt.Errorf("%.40q is neither RFC 3339 nor a Unix epoch", s)
	}
	switch {
	case f >= 1e17:
		return time.Unix(0, int64(f)).UTC(), nil
	case f >= 1e14:
		return time.UnixMicro(int64(f)).UTC(), nil
	case f >= 1e11:
		return time.UnixMilli(int64(f)).UTC(), nil
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// ParseText parses the body of a text ingest: one record per line, with the
// line as its "message" field. Blank lines are skipped, a trailing \r is
// dropped, and a line longer than flowg.MaxFieldValueLen fails the body.
func ParseText(body []byte, now time.Time) ([]flowg.Record, error) {
	var recs []flowg.Record
	for line := 1; len(body) > 0; line++ {
		var l []byte
		l, body, _ = bytes.Cut(body, []byte{'\n'})
		l = bytes.TrimSuffix(l, []byte{'\r'})
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if len(l) > flowg.MaxFieldValueLen {
			return nil, fmt.Errorf("line %d is %d bytes, more than the limit of %d", line, len(l), flowg.MaxFieldValueLen)
		}
		if !utf8.Valid(l) {
			return nil, fmt.Errorf("line %d is not valid UTF-8", line)
		}
		if len(recs) == flowg.MaxBatchRecords {
			return nil, fmt.Errorf("%w: more than %d lines", flowg.ErrTooLarge, flowg.MaxBatchRecords)
		}
		recs = append(recs, flowg.Record{Timestamp: now, Fields: map[string]string{"message": string(l)}})
	}
	return recs, nil
}

func (a *API) ingest(w http.ResponseWriter, r *http.Request, text bool) {
	stream := r.PathValue("stream")
	if err := flowg.ValidateStreamName(stream); err != nil {
		a.reject(w, r, "stream_name", errorf(http.StatusBadRequest, "%v", err))
		return
	}
	if !a.checkParams(w, r, "timestamp_field") {
		return
	}
	q := r.URL.Query()
	opts := StructOptions{TimeField: q.Get("timestamp_field")}
	if opts.TimeField != "" && len(opts.TimeField) > flowg.MaxFieldNameLen {
		a.reject(w, r, "parse", errorf(http.StatusBadRequest, "timestamp_field is longer than %d bytes", flowg.MaxFieldNameLen))
		return
	}
	body, release, ok := a.admit(w, r)
	if !ok {
		return
	}
	defer release()
	now := time.Now().UTC()
	var recs []flowg.Record
	var err error
	if text {
		recs, err = ParseText(body, now)
	} else {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		opts.NDJSON = mt == "application/x-ndjson" || mt == "application/ndjson" || mt == "application/jsonlines"
		recs, err = ParseStructWith(body, opts, now)
	}
	if err != nil {
		if statusOf(err) != http.StatusRequestEntityTooLarge {
			err = errorf(http.StatusBadRequest, "%v", err)
		}
		a.reject(w, r, "parse", err)
		return
	}
	if err := a.commit(r, stream, recs); err != nil {
		a.reject(w, r, "store", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"ingested": len(recs)})
}

// admit is the door of every ingest route: it refuses while the node
// shuts down (503) and while the ingest in flight is at its budget (429,
// Retry-After), then reads the body, decoded and bounded. The caller
// releases the budget once it has answered; when ok is false the request
// has been answered.
func (a *API) admit(w http.ResponseWriter, r *http.Request) (body []byte, release func(), ok bool) {
	if a.draining.Load() {
		w.Header().Set("Retry-After", "5")
		a.writeError(w, r, errorf(http.StatusServiceUnavailable, "server is shutting down"))
		return nil, nil, false
	}
	// The body is weighed before it is read: its declared length, or the
	// body limit when it has none (chunked) or is compressed (it decodes
	// to up to the limit).
	weight := a.cfg.Limits.MaxBodyBytes
	if enc := r.Header.Get("Content-Encoding"); r.ContentLength >= 0 && r.ContentLength < weight && (enc == "" || enc == "identity") {
		weight = max(r.ContentLength, 1)
	}
	weight = min(weight, a.cfg.Limits.MaxIngestInFlight)
	if !a.inflight.TryAcquire(weight) {
		a.m.ingestBusy.Inc()
		w.Header().Set("Retry-After", "1")
		a.reject(w, r, "busy", errorf(http.StatusTooManyRequests, "the node is storing %d bytes of ingest already; retry shortly", a.cfg.Limits.MaxIngestInFlight))
		return nil, nil, false
	}
	body, err := a.readBody(w, r)
	if err != nil {
		a.inflight.Release(weight)
		a.reject(w, r, "body", err)
		return nil, nil, false
	}
	return body, func() { a.inflight.Release(weight) }, true
}

// commit stamps the caller's mesh identity (refusing records that claim
// one) and appends the records: it returns once they are committed (and
// copied, in a cluster), so a 2xx after it means stored.
func (a *API) commit(r *http.Request, stream string, recs []flowg.Record) error {
	if err := stampMesh(r, recs); err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	if err := a.cfg.Logs.Append(r.Context(), stream, recs); err != nil {
		return err
	}
	a.m.ingestedRecords.Add(float64(len(recs)))
	return nil
}

func (a *API) reject(w http.ResponseWriter, r *http.Request, reason string, err error) {
	a.m.ingestRejected.WithLabelValues(reason).Inc()
	a.writeError(w, r, err)
}
