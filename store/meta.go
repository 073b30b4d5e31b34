package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
)

// The auth and config databases are small and must agree on every node:
// every value carries a version (a hybrid logical clock timestamp and the
// node that wrote it), the highest version wins, and a delete is a
// tombstone with a version of its own, kept for the tombstone window so
// that a node that was away learns of it instead of bringing the entry back.

// hlc is a hybrid logical clock: wall milliseconds in the high 48 bits, a
// counter in the low 16. It never goes back, and it moves past every
// timestamp it observes, so a change made after seeing another orders
// after it even across nodes whose clocks disagree.
type hlc struct {
	mu   sync.Mutex
	last uint64
}

func (c *hlc) now() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := uint64(time.Now().UnixMilli()) << 16
	c.last = max(wall, c.last+1)
	return c.last
}

func (c *hlc) observe(ts uint64) {
	c.mu.Lock()
	c.last = max(c.last, ts)
	c.mu.Unlock()
}

// hlcTime is the wall time of an HLC timestamp.
func hlcTime(ts uint64) time.Time { return time.UnixMilli(int64(ts >> 16)) }

// version orders the values of one key: timestamp, then origin.
type version struct {
	ts     uint64
	origin string
}

func (a version) after(b version) bool {
	return a.ts > b.ts || a.ts == b.ts && a.origin > b.origin
}

// bootVersion is the version of what every node creates by itself (the
// admin role, the initial user, a stream's default settings): lower than
// any change made on purpose, so that the cluster's value always wins.
var bootVersion = version{ts: 1}

const (
	envelopeV1   = 0x01
	flagTomb     = 0x01
	maxOriginLen = 255
)

// encodeEnvelope is 0x01, ts (8 bytes), flags, origin length, origin, payload.
func encodeEnvelope(v version, tomb bool, payload []byte) []byte {
	b := make([]byte, 0, 11+len(v.origin)+len(payload))
	b = append(b, envelopeV1)
	b = binary.BigEndian.AppendUint64(b, v.ts)
	flags := byte(0)
	if tomb {
		flags = flagTomb
	}
	b = append(b, flags, byte(len(v.origin)))
	b = append(b, v.origin...)
	return append(b, payload...)
}

var errEnvelope = errors.New("corrupt versioned value")

func decodeEnvelope(b []byte) (v version, tomb bool, payload []byte, err error) {
	if len(b) > 0 && b[0] == '{' {
		return version{}, false, b, nil // written before values were versioned
	}
	if len(b) < 11 || b[0] != envelopeV1 || len(b) < 11+int(b[10]) {
		return v, false, nil, errEnvelope
	}
	v.ts = binary.BigEndian.Uint64(b[1:9])
	tomb = b[9]&flagTomb != 0
	n := int(b[10])
	v.origin = string(b[11 : 11+n])
	return v, tomb, b[11+n:], nil
}

// metaDB is a database of versioned values.
type metaDB struct {
	name   string
	db     *badger.DB
	clock  *hlc
	origin atomic.Pointer[string]
	// onChange, when set, receives the entries of every local commit.
	onChange atomic.Pointer[func([]flowg.MetaEntry)]
	// disk refuses writes on a full disk (nil: no check).
	disk *diskGuard
}

func newMetaDB(name string, db *badger.DB, clock *hlc) *metaDB {
	m := &metaDB{name: name, db: db, clock: clock}
	local := "local"
	m.origin.Store(&local)
	return m
}

// metaTxn writes versioned values inside one Badger transaction.
type metaTxn struct {
	m       *metaDB
	txn     *badger.Txn
	changes []flowg.MetaEntry
}

// getTxn returns the payload of key; a tombstone is flowg.ErrNotFound.
func (m *metaDB) getTxn(txn *badger.Txn, key string) ([]byte, error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, flowg.ErrNotFound
	} else if err != nil {
		return nil, err
	}
	b, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	_, tomb, payload, err := decodeEnvelope(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if tomb {
		return nil, flowg.ErrNotFound
	}
	return payload, nil
}

func (t *metaTxn) write(key string, v version, tomb bool, payload []byte) error {
	val := encodeEnvelope(v, tomb, payload)
	if err := t.txn.Set([]byte(key), val); err != nil {
		return err
	}
	t.changes = append(t.changes, flowg.MetaEntry{DB: t.m.name, Key: key, Value: val})
	return nil
}

// set stores payload under key with a new version.
func (t *metaTxn) set(key string, payload []byte) error {
	return t.write(key, version{t.m.clock.now(), *t.m.origin.Load()}, false, payload)
}

// setBoot stores payload under key with the boot version, unless the key
// has any value or tombstone already.
func (t *metaTxn) setBoot(key string, payload []byte) error {
	if _, err := t.txn.Get([]byte(key)); err == nil {
		return nil
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return err
	}
	return t.write(key, bootVersion, false, payload)
}

// del leaves a tombstone under key.
func (t *metaTxn) del(key string) error {
	return t.write(key, version{t.m.clock.now(), *t.m.origin.Load()}, true, nil)
}

// update runs fn in a read-write transaction and hands its changes to
// onChange once committed.
func (m *metaDB) update(fn func(t *metaTxn) error) error {
	if err := m.disk.check(); err != nil {
		return err
	}
	t := &metaTxn{m: m}
	err := m.db.Update(func(txn *badger.Txn) error {
		t.txn, t.changes = txn, t.changes[:0]
		return fn(t)
	})
	if err == nil && len(t.changes) > 0 {
		if f := m.onChange.Load(); f != nil {
			(*f)(t.changes)
		}
	}
	return err
}

func (m *metaDB) get(key string) (payload []byte, err error) {
	err = m.db.View(func(txn *badger.Txn) error {
		payload, err = m.getTxn(txn, key)
		return err
	})
	return payload, err
}

// scan calls fn with every live value under prefix.
func (m *metaDB) scan(prefix string, fn func(name string, payload []byte) error) error {
	return m.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			name := strings.TrimPrefix(string(it.Item().Key()), prefix)
			err := it.Item().Value(func(b []byte) error {
				_, tomb, payload, err := decodeEnvelope(b)
				if err != nil || tomb {
					return err
				}
				return fn(name, payload)
			})
			if err != nil {
				return fmt.Errorf("%s%s: %w", prefix, name, err)
			}
		}
		return nil
	})
}

// entries returns every value and tombstone, raw.
func (m *metaDB) entries() ([]flowg.MetaEntry, error) {
	var out []flowg.MetaEntry
	err := m.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, flowg.MetaEntry{DB: m.name, Key: string(it.Item().KeyCopy(nil)), Value: v})
		}
		return nil
	})
	return out, err
}

// newer filters entries down to those whose version is higher than what
// the database holds, and moves the clock past every version seen.
func (m *metaDB) newer(txn *badger.Txn, entries []flowg.MetaEntry) ([]flowg.MetaEntry, error) {
	var out []flowg.MetaEntry
	for _, e := range entries {
		in, _, _, err := decodeEnvelope(e.Value)
		if err != nil || e.Key == "" || len(e.Key) > 1024 || len(in.origin) > maxOriginLen {
			return nil, fmt.Errorf("%w: entry %q of %s: %v", flowg.ErrInvalid, e.Key, m.name, err)
		}
		m.clock.observe(in.ts)
		item, err := txn.Get([]byte(e.Key))
		if err == nil {
			var cur version
			if err := item.Value(func(b []byte) error {
				cur, _, _, err = decodeEnvelope(b)
				return err
			}); err != nil {
				return nil, err
			}
			if !in.after(cur) {
				continue
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// apply writes the entries that are newer than the local ones and returns
// them; it is idempotent, and its outcome does not depend on the order in
// which entries arrive.
func (m *metaDB) apply(entries []flowg.MetaEntry) ([]flowg.MetaEntry, error) {
	var applied []flowg.MetaEntry
	err := m.db.Update(func(txn *badger.Txn) error {
		var err error
		if applied, err = m.newer(txn, entries); err != nil {
			return err
		}
		for _, e := range applied {
			if err := txn.Set([]byte(e.Key), e.Value); err != nil {
				return err
			}
		}
		return nil
	})
	return applied, err
}

// dropTombstones deletes the tombstones older than horizon.
func (m *metaDB) dropTombstones(horizon time.Time) (int, error) {
	var keys [][]byte
	err := m.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			err := it.Item().Value(func(b []byte) error {
				v, tomb, _, err := decodeEnvelope(b)
				if err == nil && tomb && hlcTime(v.ts).Before(horizon) {
					keys = append(keys, it.Item().KeyCopy(nil))
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	wb := m.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), wb.Flush()
}

// digest is one hash per bucket of keys, over each entry's key and
// version: two databases with the same digest hold the same versions.
func metaDigest(entries []flowg.MetaEntry) map[uint8]uint64 {
	d := map[uint8]uint64{}
	for _, e := range entries {
		d[MetaBucket(e.Key)] ^= fnv64(e.Key, versionBytes(e.Value))
	}
	return d
}

// MetaBucket is the digest bucket of a key.
func MetaBucket(key string) uint8 { return uint8(fnv64(key, nil)) }

func versionBytes(v []byte) []byte {
	if len(v) >= 11 && v[0] == envelopeV1 && len(v) >= 11+int(v[10]) {
		return v[:11+int(v[10])]
	}
	return v
}

func fnv64(s string, b []byte) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	h.Write([]byte{0})
	h.Write(b)
	return h.Sum64()
}
