package httpapi

import (
	"fmt"
	"maps"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	flowg "github.com/flowg-server/flowg-server"
)

// StreamHeader names the stream of a push whose protocol has no place for
// one (OTLP, Loki); it wins over every other rule.
const StreamHeader = "X-Flowg-Stream"

// DefaultOTLPStream takes OTLP logs whose resource names no service.
const DefaultOTLPStream = "otlp"

// otlpLogs takes an OTLP/HTTP logs export (protobuf or JSON, as the OTLP
// specification's HTTP binding says) at /v1/logs, where each resource's
// records go to the stream the StreamHeader names, else to its
// service.name, else to DefaultOTLPStream; and at
// /api/v1/streams/{stream}/otlp/v1/logs, where all go to {stream}.
func (a *API) otlpLogs(w http.ResponseWriter, r *http.Request) {
	fixed, ok := a.pushStream(w, r)
	if !ok {
		return
	}
	mt, ok := a.protoOrJSON(w, r, "OTLP/HTTP")
	if !ok {
		return
	}
	body, release, ok := a.admit(w, r)
	if !ok {
		return
	}
	defer release()
	req := plogotlp.NewExportRequest()
	var err error
	if mt == "application/json" {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		a.reject(w, r, "parse", errorf(http.StatusBadRequest, "bad OTLP logs body: %v", err))
		return
	}
	list, rejected, firstErr, err := otlpRecords(req.Logs(), fixed, time.Now().UTC())
	if err != nil {
		a.reject(w, r, "parse", err)
		return
	}
	if !a.commitAll(w, r, list) {
		return
	}
	resp := plogotlp.NewExportResponse()
	if rejected > 0 {
		// The OTLP partial success: these are not retried by the client.
		a.m.ingestRejected.WithLabelValues("record").Add(float64(rejected))
		resp.PartialSuccess().SetRejectedLogRecords(int64(rejected))
		resp.PartialSuccess().SetErrorMessage(firstErr)
	}
	var out []byte
	if mt == "application/json" {
		out, err = resp.MarshalJSON()
	} else {
		out, err = resp.MarshalProto()
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", mt)
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// streamBatch is the records of one request bound for one stream.
type streamBatch struct {
	stream string
	recs   []flowg.Record
}

// batches groups a request's records by stream, in first-seen order.
type batches struct {
	list  []streamBatch
	index map[string]int
}

func (b *batches) add(stream string, rec flowg.Record) {
	if b.index == nil {
		b.index = map[string]int{}
	}
	i, ok := b.index[stream]
	if !ok {
		i = len(b.list)
		b.index[stream] = i
		b.list = append(b.list, streamBatch{stream: stream})
	}
	b.list[i].recs = append(b.list[i].recs, rec)
}

// pushStream is the stream a push names for all its records: the path's
// {stream}, else the StreamHeader; empty when neither does. An invalid
// name has been answered (400) when ok is false.
func (a *API) pushStream(w http.ResponseWriter, r *http.Request) (fixed string, ok bool) {
	fixed = r.PathValue("stream")
	if fixed == "" {
		fixed = r.Header.Get(StreamHeader)
	}
	if fixed != "" {
		if err := flowg.ValidateStreamName(fixed); err != nil {
			a.reject(w, r, "stream_name", errorf(http.StatusBadRequest, "%v", err))
			return "", false
		}
	}
	return fixed, true
}

// protoOrJSON is a push's Content-Type, application/x-protobuf or
// application/json; another has been answered (415) when ok is false.
func (a *API) protoOrJSON(w http.ResponseWriter, r *http.Request, what string) (mt string, ok bool) {
	mt, _, _ = mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-protobuf" && mt != "application/json" {
		a.reject(w, r, "parse", errorf(http.StatusUnsupportedMediaType, "Content-Type %q: %s takes application/x-protobuf or application/json", mt, what))
		return "", false
	}
	return mt, true
}

// commitAll commits each stream's records; the first failure has been
// answered when it returns false.
func (a *API) commitAll(w http.ResponseWriter, r *http.Request, list []streamBatch) bool {
	for _, b := range list {
		if err := a.commit(r, b.stream, b.recs); err != nil {
			a.reject(w, r, "store", err)
			return false
		}
	}
	return true
}

// otlpRecords turns an export into records per stream. A record that
// breaks a record limit is rejected alone (counted, with the first
// reason); a request over the batch limit is refused whole.
func otlpRecords(ld plog.Logs, fixed string, now time.Time) ([]streamBatch, int, string, error) {
	if n := ld.LogRecordCount(); n > flowg.MaxBatchRecords {
		return nil, 0, "", errorf(http.StatusRequestEntityTooLarge, "%d log records, more than the limit of %d", n, flowg.MaxBatchRecords)
	}
	var out batches
	rejected, firstErr := 0, ""
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		stream := fixed
		if stream == "" {
			stream = DefaultOTLPStream
			if v, ok := res.Get("service.name"); ok {
				if s := streamNameOf(v.AsString()); s != "" {
					stream = s
				}
			}
		}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			// What the resource and scope give every record, made once.
			base := make(map[string]string, res.Len()+sl.Scope().Attributes().Len()+2)
			put := func(k, v string) { base[k] = v }
			flattenValues(res, "", put, 0)
			if sl.Scope().Name() != "" {
				put("scope.name", sl.Scope().Name())
			}
			if sl.Scope().Version() != "" {
				put("scope.version", sl.Scope().Version())
			}
			flattenValues(sl.Scope().Attributes(), "scope.", put, 0)
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				rec, err := otlpRecord(base, lrs.At(k), now)
				if err != nil {
					if rejected == 0 {
						firstErr = fmt.Sprintf("log record %d of scope %d of resource %d: %v", k, j, i, err)
					}
					rejected++
					continue
				}
				out.add(stream, rec)
			}
		}
	}
	return out.list, rejected, firstErr, nil
}

// otlpRecord maps one log record onto base (its resource's attributes
// under their own names, the scope as scope.name, scope.version and
// scope.<attribute>): log attributes under their own names (they win a
// clash), a string body as message (a map body as body.<key>), severity as level, severity_text and
// severity_number, trace_id and span_id in hex, event_name.
func otlpRecord(base map[string]string, lr plog.LogRecord, now time.Time) (flowg.Record, error) {
	f := make(map[string]string, 8+len(base)+lr.Attributes().Len())
	maps.Copy(f, base)
	var err error
	put := func(k, v string) {
		if err == nil && len(f) >= flowg.MaxFieldsPerRecord {
			if _, ok := f[k]; !ok {
				err = fmt.Errorf("more than %d fields", flowg.MaxFieldsPerRecord)
			}
		}
		if err == nil {
			f[k] = v
		}
	}
	body := lr.Body()
	switch body.Type() {
	case pcommon.ValueTypeEmpty:
	case pcommon.ValueTypeMap:
		flattenValues(body.Map(), "body.", put, 0)
	default:
		put("message", body.AsString())
	}
	flattenValues(lr.Attributes(), "", put, 0)
	if t := lr.SeverityText(); t != "" {
		put("severity_text", t)
	}
	if n := lr.SeverityNumber(); n != plog.SeverityNumberUnspecified {
		put("severity_number", fmt.Sprint(int32(n)))
	}
	if lvl := otlpLevel(lr.SeverityText(), lr.SeverityNumber()); lvl != "" {
		put("level", lvl)
	}
	if id := lr.TraceID(); !id.IsEmpty() {
		put("trace_id", id.String())
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		put("span_id", id.String())
	}
	if e := lr.EventName(); e != "" {
		put("event_name", e)
	}
	if err != nil {
		return flowg.Record{}, err
	}
	ts := lr.Timestamp()
	if ts == 0 {
		ts = lr.ObservedTimestamp()
	}
	rec := flowg.Record{Timestamp: now, Fields: f}
	if ts != 0 {
		rec.Timestamp = ts.AsTime().UTC()
	}
	return rec, rec.Validate() // UTF-8 included
}

// flattenValues puts a map's values under prefix+key; nested maps flatten
// to dotted keys (to maxJSONDepth), slices and bytes as their JSON text.
func flattenValues(m pcommon.Map, prefix string, put func(k, v string), depth int) {
	m.Range(func(k string, v pcommon.Value) bool {
		if v.Type() == pcommon.ValueTypeMap && depth < maxJSONDepth {
			flattenValues(v.Map(), prefix+k+".", put, depth+1)
			return true
		}
		if v.Type() != pcommon.ValueTypeEmpty {
			put(prefix+k, v.AsString())
		}
		return true
	})
}

// otlpLevel is the level field of the default index: the severity text
// when it names a level, else the severity number's range.
func otlpLevel(text string, n plog.SeverityNumber) string {
	switch strings.ToLower(text) {
	case "trace", "debug", "debug2", "debug3", "debug4", "trace2", "trace3", "trace4":
		return "debug"
	case "info", "information", "informational", "notice", "info2", "info3", "info4":
		return "info"
	case "warn", "warning", "warn2", "warn3", "warn4":
		return "warn"
	case "error", "err", "error2", "error3", "error4":
		return "error"
	case "fatal", "critical", "crit", "alert", "emergency", "panic", "fatal2", "fatal3", "fatal4":
		return "fatal"
	}
	switch {
	case n == plog.SeverityNumberUnspecified:
		return ""
	case n <= plog.SeverityNumberDebug4:
		return "debug"
	case n <= plog.SeverityNumberInfo4:
		return "info"
	case n <= plog.SeverityNumberWarn4:
		return "warn"
	case n <= plog.SeverityNumberError4:
		return "error"
	}
	return "fatal"
}

var notStreamChar = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// streamNameOf makes a stream name of a service or index name: characters
// a stream name cannot hold become '_', a leading '.' or '-' and anything
// past the length limit go; empty when nothing is left.
func streamNameOf(s string) string {
	s = strings.TrimLeft(notStreamChar.ReplaceAllString(s, "_"), ".-")
	if len(s) > flowg.MaxStreamNameLen {
		s = s[:flowg.MaxStreamNameLen]
	}
	if flowg.ValidateStreamName(s) != nil {
		return ""
	}
	return s
}
