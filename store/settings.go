package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
)

// SettingsStore keeps the stream settings in the config database, with a copy
// in memory for the ingest path.
type SettingsStore struct {
	db   *badger.DB
	meta *metaDB

	mu      sync.RWMutex
	streams map[string]flowg.StreamSettings
	// purges holds, per purged stream, the last sequence number of each
	// origin that the purge deleted: records up to it that arrive later,
	// from a node that had not yet sent them, are dropped.
	purges map[string]map[string]uint64
}

const (
	prefixStream = "stream/"
	prefixPurge  = "purge/"
)

// streamJSON is the stored form of stream settings.
type streamJSON struct {
	RetentionTime int64    `json:"retention_time_ns"`
	RetentionSize int64    `json:"retention_size"`
	IndexedFields []string `json:"indexed_fields"`
}

func openConfig(dir string, syncWrites bool, log *slog.Logger, clock *hlc) (*SettingsStore, error) {
	db, err := openBadger(dir, syncWrites, log, smallDB)
	if err != nil {
		return nil, err
	}
	c := &SettingsStore{db: db, meta: newMetaDB("config", db, clock), streams: map[string]flowg.StreamSettings{}, purges: map[string]map[string]uint64{}}
	err = c.meta.scan(prefixStream, func(name string, v []byte) error {
		st, err := decodeSettings(v)
		c.streams[name] = st
		return err
	})
	if err == nil {
		err = c.meta.scan(prefixPurge, func(name string, v []byte) error {
			var marks map[string]uint64
			err := json.Unmarshal(v, &marks)
			c.purges[name] = marks
			return err
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot load stream settings: %w", err)
	}
	return c, nil
}

func decodeSettings(v []byte) (flowg.StreamSettings, error) {
	var sj streamJSON
	if err := json.Unmarshal(v, &sj); err != nil {
		return flowg.StreamSettings{}, err
	}
	return flowg.StreamSettings{
		RetentionTime: time.Duration(sj.RetentionTime),
		RetentionSize: sj.RetentionSize,
		IndexedFields: sj.IndexedFields,
	}, nil
}

func encodeSettings(s flowg.StreamSettings) ([]byte, error) {
	return json.Marshal(streamJSON{int64(s.RetentionTime), s.RetentionSize, s.IndexedFields})
}

// smallDB sizes Badger for a database of a few megabytes.
func smallDB(o *badger.Options) {
	o.MemTableSize = 8 << 20
	o.NumMemtables = 1
	o.BlockCacheSize = 2 << 20
	o.IndexCacheSize = 0
	o.ValueLogFileSize = 64 << 20
}

// Stream returns the settings of a stream and whether it exists.
func (c *SettingsStore) Stream(name string) (flowg.StreamSettings, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.streams[name]
	return s, ok
}

// StreamNames returns the names of every stream.
func (c *SettingsStore) StreamNames() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.streams))
	for n := range c.streams {
		names = append(names, n)
	}
	return names
}

// putStream stores the settings of a stream, creating it if need be.
func (c *SettingsStore) putStream(name string, s flowg.StreamSettings) error {
	_, err := c.put(name, s, false)
	return err
}

// ensureStream creates the stream with default settings unless it exists,
// and returns its settings.
func (c *SettingsStore) ensureStream(name string) (flowg.StreamSettings, error) {
	if s, ok := c.Stream(name); ok {
		return s, nil
	}
	return c.put(name, flowg.DefaultStreamSettings(), true)
}

// put stores s as the settings of name, unless onlyIfAbsent and the stream
// exists; it returns the settings in force.
func (c *SettingsStore) put(name string, s flowg.StreamSettings, onlyIfAbsent bool) (flowg.StreamSettings, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.streams[name]; ok && onlyIfAbsent {
		return old, nil
	}
	v, err := encodeSettings(s)
	if err != nil {
		return s, err
	}
	err = c.meta.update(func(t *metaTxn) error {
		if !onlyIfAbsent {
			return t.set(prefixStream+name, v)
		}
		// A stream made by ingest gets default settings that any
		// settings given on purpose override, on every node; after a
		// purge, the stream comes back with a version newer than the purge.
		if _, err := t.txn.Get([]byte(prefixStream + name)); errors.Is(err, badger.ErrKeyNotFound) {
			return t.setBoot(prefixStream+name, v)
		}
		return t.set(prefixStream+name, v)
	})
	if err != nil {
		return s, fmt.Errorf("cannot store settings of stream %q: %w", name, err)
	}
	c.streams[name] = s
	return s, nil
}

// purgeStream deletes the settings of a stream and keeps the purge's marks.
func (c *SettingsStore) purgeStream(name string, marks map[string]uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := json.Marshal(marks)
	if err != nil {
		return err
	}
	err = c.meta.update(func(t *metaTxn) error {
		if err := t.set(prefixPurge+name, b); err != nil {
			return err
		}
		return t.del(prefixStream + name)
	})
	if err != nil {
		return fmt.Errorf("cannot delete settings of stream %q: %w", name, err)
	}
	delete(c.streams, name)
	c.purges[name] = marks
	return nil
}

// purgeMark is the last sequence of origin that a purge of stream deleted.
func (c *SettingsStore) purgeMark(stream, origin string) uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.purges[stream][origin]
}

// cached updates the in-memory settings after entries from another node
// were applied.
func (c *SettingsStore) cached(e flowg.MetaEntry) error {
	_, tomb, payload, err := decodeEnvelope(e.Value)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.HasPrefix(e.Key, prefixStream):
		name := strings.TrimPrefix(e.Key, prefixStream)
		if tomb {
			delete(c.streams, name)
			return nil
		}
		st, err := decodeSettings(payload)
		if err != nil {
			return err
		}
		c.streams[name] = st
	case strings.HasPrefix(e.Key, prefixPurge) && !tomb:
		var marks map[string]uint64
		if err := json.Unmarshal(payload, &marks); err != nil {
			return err
		}
		c.purges[strings.TrimPrefix(e.Key, prefixPurge)] = marks
	}
	return nil
}

func (c *SettingsStore) close() error { return c.db.Close() }
