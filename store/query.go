package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
)

// Query answers q from the log database. A page ends when it holds Limit
// records or when it has read the store's scan budget of entries, so that one
// request never reads a whole large stream: a short page with a cursor means
// "keep going".
func (s *LogStore) Query(ctx context.Context, q flowg.Query) (flowg.Page, error) {
	start := time.Now()
	defer func() { s.m.querySeconds.Observe(time.Since(start).Seconds()) }()
	if _, ok := s.cfg.Stream(q.Stream); !ok {
		return flowg.Page{}, fmt.Errorf("stream %q: %w", q.Stream, flowg.ErrNotFound)
	}
	var lo, hi recordID // [lo, hi)
	if !q.From.IsZero() {
		putBE(lo[:8], tsOf(q.From))
	}
	for i := range hi {
		hi[i] = 0xff
	}
	if !q.To.IsZero() {
		hi = recordID{}
		putBE(hi[:8], tsOf(q.To))
	}
	if q.Cursor != "" {
		id, err := decodeCursor(q.Cursor)
		if err != nil {
			return flowg.Page{}, err
		}
		if q.Ascending {
			if !increment(&id) {
				return flowg.Page{}, nil
			}
			lo = maxID(lo, id)
		} else {
			hi = minID(hi, id)
		}
	}
	if q.Limit <= 0 {
		q.Limit = 100
	}
	settings, _ := s.cfg.Stream(q.Stream)
	prefix, viaIndex := dataPrefix(q.Stream), false
	for _, eq := range q.Filter.Equalities() {
		if slices.Contains(settings.IndexedFields, eq.Field) {
			prefix, viaIndex = indexPrefix(q.Stream, eq.Field, eq.Value), true
			break
		}
	}
	var page flowg.Page
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: !q.Ascending, PrefetchValues: false})
		defer it.Close()
		lower, upper := append(slices.Clip(prefix), lo[:]...), append(slices.Clip(prefix), hi[:]...)
		if q.Ascending {
			it.Seek(lower)
		} else {
			it.Seek(upper)
		}
		for ; it.Valid(); it.Next() {
			key := it.Item().Key()
			if bytes.Compare(key, lower) < 0 || bytes.Compare(key, upper) >= 0 {
				if q.Ascending || bytes.Compare(key, lower) < 0 {
					break
				}
				continue // the reverse seek landed on upper itself
			}
			id := idOf(key)
			if len(page.Records) == q.Limit || page.Scanned == s.maxScan {
				// More may follow: hand out a cursor after the last record read.
				last := id
				if q.Ascending {
					decrement(&last)
				} else {
					increment(&last)
				}
				page.NextCursor = encodeCursor(last)
				return nil
			}
			if page.Scanned%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			page.Scanned++
			var val []byte
			var err error
			if viaIndex {
				item, gerr := txn.Get(dataKeyID(q.Stream, id))
				if errors.Is(gerr, badger.ErrKeyNotFound) {
					continue // deleted by retention since the index entry was read
				} else if gerr != nil {
					return gerr
				}
				val, err = item.ValueCopy(nil)
			} else {
				err = it.Item().Value(func(v []byte) error { val = v; return nil })
			}
			if err != nil {
				return err
			}
			fields, err := decodeFields(val)
			if err != nil {
				return fmt.Errorf("record %x of stream %q: %w", id, q.Stream, err)
			}
			if q.Filter.Match(fields) {
				page.Records = append(page.Records, flowg.Record{Timestamp: timeOf(id.ts()), Fields: fields})
			}
		}
		return nil
	})
	s.m.scannedRecords.Add(float64(page.Scanned))
	return page, err
}
