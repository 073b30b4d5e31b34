package store

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
)

// ConfigStore keeps the stream settings in the config database, with a copy
// in memory for the ingest path.
type ConfigStore struct {
	db *badger.DB

	mu      sync.RWMutex
	streams map[string]flowg.StreamSettings
}

const prefixStream = "stream/"

// streamJSON is the stored form of stream settings.
type streamJSON struct {
	RetentionTime int64    `json:"retention_time_ns"`
	RetentionSize int64    `json:"retention_size"`
	IndexedFields []string `json:"indexed_fields"`
}

func openConfig(dir string, syncWrites bool, log *slog.Logger) (*ConfigStore, error) {
	db, err := openBadger(dir, syncWrites, log, smallDB)
	if err != nil {
		return nil, err
	}
	c := &ConfigStore{db: db, streams: map[string]flowg.StreamSettings{}}
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixStream), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var sj streamJSON
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &sj) }); err != nil {
				return fmt.Errorf("stream %q: %w", it.Item().Key(), err)
			}
			name := strings.TrimPrefix(string(it.Item().Key()), prefixStream)
			c.streams[name] = flowg.StreamSettings{
				RetentionTime: time.Duration(sj.RetentionTime),
				RetentionSize: sj.RetentionSize,
				IndexedFields: sj.IndexedFields,
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot load stream settings: %w", err)
	}
	return c, nil
}

// smallDB sizes Badger for a database of a few megabytes.
func smallDB(o *badger.Options) {
	o.MemTableSize = 8 << 20
	o.NumMemtables = 2
	o.BlockCacheSize = 8 << 20
	o.IndexCacheSize = 0
	o.ValueLogFileSize = 64 << 20
}

// Stream returns the settings of a stream and whether it exists.
func (c *ConfigStore) Stream(name string) (flowg.StreamSettings, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.streams[name]
	return s, ok
}

// StreamNames returns the names of every stream.
func (c *ConfigStore) StreamNames() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	names := make([]string, 0, len(c.streams))
	for n := range c.streams {
		names = append(names, n)
	}
	return names
}

// putStream stores the settings of a stream, creating it if need be.
func (c *ConfigStore) putStream(name string, s flowg.StreamSettings) error {
	_, err := c.put(name, s, false)
	return err
}

// ensureStream creates the stream with default settings unless it exists,
// and returns its settings.
func (c *ConfigStore) ensureStream(name string) (flowg.StreamSettings, error) {
	if s, ok := c.Stream(name); ok {
		return s, nil
	}
	return c.put(name, flowg.DefaultStreamSettings(), true)
}

// put stores s as the settings of name, unless onlyIfAbsent and the stream
// exists; it returns the settings in force.
func (c *ConfigStore) put(name string, s flowg.StreamSettings, onlyIfAbsent bool) (flowg.StreamSettings, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.streams[name]; ok && onlyIfAbsent {
		return old, nil
	}
	v, err := json.Marshal(streamJSON{int64(s.RetentionTime), s.RetentionSize, s.IndexedFields})
	if err != nil {
		return s, err
	}
	if err := c.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(prefixStream+name), v) }); err != nil {
		return s, fmt.Errorf("cannot store settings of stream %q: %w", name, err)
	}
	c.streams[name] = s
	return s, nil
}

func (c *ConfigStore) deleteStream(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(prefixStream + name)) }); err != nil {
		return fmt.Errorf("cannot delete settings of stream %q: %w", name, err)
	}
	delete(c.streams, name)
	return nil
}

func (c *ConfigStore) close() error { return c.db.Close() }
