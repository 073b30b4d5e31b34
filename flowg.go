// Package flowg holds the vocabulary that every part of flowg-server shares:
// log records, stream settings, users, roles, scopes, tokens and cluster
// nodes, with the limits that bound them.
//
// It imports no other package of the project but the filter language, so the feature packages (store,
// syslog, httpapi, serfnet, discovery) can speak the same types without
// importing each other; the node package connects them.
package flowg

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"
	"unicode/utf8"
)

// Limits on what a client may send. They are documented in the README; the
// store and the HTTP API enforce them.
const (
	// MaxStreamNameLen is the longest stream name, in bytes.
	MaxStreamNameLen = 64
	// MaxFieldNameLen is the longest field name, in bytes.
	MaxFieldNameLen = 256
	// MaxFieldValueLen is the longest field value, in bytes.
	MaxFieldValueLen = 64 << 10
	// MaxFieldsPerRecord bounds the number of fields of one record.
	MaxFieldsPerRecord = 256
	// MaxRecordBytes bounds the sum of the field names and values of one record.
	MaxRecordBytes = 256 << 10
	// MaxBatchRecords bounds the records of one ingest request.
	MaxBatchRecords = 10_000
	// MaxIndexedFields bounds the indexed fields of one stream.
	MaxIndexedFields = 8
)

// Record is one log record: a point in time and flat string fields.
type Record struct {
	// Timestamp is when the record happened, as sent by the client, or the
	// time it was received when the client sent none.
	Timestamp time.Time
	// Fields are the record's key/value pairs; nested input is flattened to
	// dotted keys before it gets here.
	Fields map[string]string
}

// Size is the number of bytes of the record's field names and values.
func (r Record) Size() int {
	n := 0
	for k, v := range r.Fields {
		n += len(k) + len(v)
	}
	return n
}

// Validate checks the record against the field limits.
func (r Record) Validate() error {
	if len(r.Fields) > MaxFieldsPerRecord {
		return fmt.Errorf("record has %d fields, more than the limit of %d", len(r.Fields), MaxFieldsPerRecord)
	}
	total := 0
	for k, v := range r.Fields {
		if k == "" {
			return errors.New("record has a field with an empty name")
		}
		if len(k) > MaxFieldNameLen {
			return fmt.Errorf("field name %.32q... is %d bytes, more than the limit of %d", k, len(k), MaxFieldNameLen)
		}
		if len(v) > MaxFieldValueLen {
			return fmt.Errorf("field %q is %d bytes, more than the limit of %d", k, len(v), MaxFieldValueLen)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("field %.64q is not valid UTF-8", k)
		}
		total += len(k) + len(v)
	}
	if total > MaxRecordBytes {
		return fmt.Errorf("record is %d bytes, more than the limit of %d", total, MaxRecordBytes)
	}
	if ns := r.Timestamp.UnixNano(); ns < 0 || r.Timestamp.Year() > 2261 {
		return fmt.Errorf("timestamp %s is outside 1970..2261", r.Timestamp.Format(time.RFC3339Nano))
	}
	return nil
}

var streamNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// ValidateStreamName checks that name is a legal stream name: 1 to 64 bytes of
// letters, digits, '_', '.' and '-', not starting with '.' or '-'.
func ValidateStreamName(name string) error {
	if name == "" {
		return errors.New("stream name is empty")
	}
	if len(name) > MaxStreamNameLen {
		return fmt.Errorf("stream name is %d bytes, more than the limit of %d", len(name), MaxStreamNameLen)
	}
	if !streamNameRE.MatchString(name) {
		return fmt.Errorf("stream name %q has illegal characters: use letters, digits, '_', '.' and '-', not starting with '.' or '-'", name)
	}
	return nil
}

// StreamSettings are the per-stream settings.
type StreamSettings struct {
	// RetentionTime drops records older than this; 0 keeps them forever.
	RetentionTime time.Duration
	// RetentionSize drops the oldest records while the stream holds more
	// than this many bytes; 0 means no limit.
	RetentionSize int64
	// IndexedFields are the fields whose values have an index, for direct
	// lookups by equality filters.
	IndexedFields []string
}

// DefaultIndexedFields are the fields indexed in a stream created by ingest.
var DefaultIndexedFields = []string{"level"}

// DefaultStreamSettings returns the settings of a stream created by ingest.
func DefaultStreamSettings() StreamSettings {
	return StreamSettings{IndexedFields: append([]string(nil), DefaultIndexedFields...)}
}

// Normalize sorts and dedups the indexed fields.
func (s *StreamSettings) Normalize() {
	sort.Strings(s.IndexedFields)
	out := s.IndexedFields[:0]
	for i, f := range s.IndexedFields {
		if i == 0 || f != s.IndexedFields[i-1] {
			out = append(out, f)
		}
	}
	s.IndexedFields = out
}

// Validate checks the settings against their limits.
func (s StreamSettings) Validate() error {
	if s.RetentionTime < 0 {
		return errors.New("retention time is negative")
	}
	if s.RetentionTime > 0 && s.RetentionTime < time.Second {
		return errors.New("retention time is shorter than 1s")
	}
	if s.RetentionSize < 0 {
		return errors.New("retention size is negative")
	}
	if len(s.IndexedFields) > MaxIndexedFields {
		return fmt.Errorf("%d indexed fields, more than the limit of %d", len(s.IndexedFields), MaxIndexedFields)
	}
	for _, f := range s.IndexedFields {
		if f == "" || len(f) > MaxFieldNameLen {
			return fmt.Errorf("indexed field name %.32q is empty or longer than %d bytes", f, MaxFieldNameLen)
		}
	}
	return nil
}

// StreamUsage is what a stream holds.
type StreamUsage struct {
	Records int64
	Bytes   int64
	// Oldest and Newest are the timestamps of the first and last records;
	// zero when the stream is empty.
	Oldest, Newest time.Time
}
