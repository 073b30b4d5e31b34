package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	flowg "github.com/flowg-server/flowg-server"
)

// groupBytes bounds the bytes that the writer groups into one transaction,
// far below Badger's transaction limit for the log database.
const groupBytes = 4 << 20

// recordOverhead is what a record adds to a transaction beside its value
// (data and origin keys, an index key, Badger's entry headers), counted so
// that a group stays under Badger's transaction limit (half of it): a
// group over the limit is refused by Badger and committed again request by
// request, which doubles the work.
const recordOverhead = 192

// LogStore keeps the records of every stream in the log database.
type LogStore struct {
	db   *badger.DB
	cfg  *SettingsStore
	log  *slog.Logger
	m    *metrics
	disk *diskGuard

	maxScan int

	appendCh chan *appendReq
	opCh     chan *opReq
	quit     chan struct{}
	stopped  chan struct{}

	closeMu sync.RWMutex // held for reading around sends to the writer
	closed  bool

	seq uint64 // the last sequence number used; owned by the writer

	// Records are identified in the cluster by their origin and the
	// origin's sequence number. The origin is this database's, not only the
	// node's: a node that comes back with the same node ID and an empty
	// disk must not give out sequence numbers its peers already hold of its
	// former self (they would take the new records for ones they have). So
	// a new database makes its origin "<node ID>@<random>" (see load).
	// Origins are numbered locally (4 bytes in keys instead of the name).
	nodeID    string
	origin    string
	self      uint32
	originsMu sync.RWMutex
	origins   map[string]uint32
	names     map[uint32]string
	heads     map[string]uint64    // per origin, the last sequence held; this node's is seq
	sealed    map[string]uint64    // per origin, the last sequence up to which every record is sealed into blocks
	ahead     map[string]uint64    // per origin, the records in blocks past sealed (see sealedDirect)
	hotSince  map[string]time.Time // per origin, since when it has rows not sealed

	spanMu sync.RWMutex       // see rows.go
	spans  map[string]rowSpan // per stream, the span of its live rows
	chunks map[string]map[uint32][]rowChunk

	sealAfter  time.Duration
	sealerDone chan struct{}

	changedMu sync.Mutex
	changed   chan struct{} // closed and replaced at every commit

	usageMu sync.RWMutex
	usage   map[string]usage

	subsMu sync.Mutex
	subs   map[string]map[*Subscription]struct{}
}

type appendReq struct {
	stream string
	recs   []flowg.Record
	vals   [][]byte
	size   int
	done   chan error
}

type opReq struct {
	fn   func() error
	done chan error
}

func openLogs(dir string, syncWrites bool, cfg *SettingsStore, m *metrics, log *slog.Logger, maxScan int, nodeID string, budget int64, sealAfter time.Duration) (*LogStore, error) {
	var reserve uint64
	db, err := openBadger(dir, syncWrites, log, func(o *badger.Options) {
		logDBOptions(o, budget)
		_, total, _ := statfs(dir)
		reserve = fitVolume(&o.MemTableSize, &o.ValueLogFileSize, total)
	})
	if err != nil {
		return nil, err
	}
	s := &LogStore{
		db: db, cfg: cfg, log: log, m: m, maxScan: maxScan,
		appendCh:   make(chan *appendReq, 1024),
		opCh:       make(chan *opReq),
		quit:       make(chan struct{}),
		stopped:    make(chan struct{}),
		usage:      map[string]usage{},
		subs:       map[string]map[*Subscription]struct{}{},
		nodeID:     nodeID,
		origins:    map[string]uint32{},
		names:      map[uint32]string{},
		heads:      map[string]uint64{},
		sealed:     map[string]uint64{},
		ahead:      map[string]uint64{},
		hotSince:   map[string]time.Time{},
		changed:    make(chan struct{}),
		sealAfter:  sealAfter,
		sealerDone: make(chan struct{}),
		disk:       newDiskGuard("log", dir, reserve, log),
	}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.loadSealed(); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot read the sealed rounds: %w", err)
	}
	s.spans, s.chunks = map[string]rowSpan{}, map[string]map[uint32][]rowChunk{}
	if err := s.loadRows(); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot read the rows' origin entries: %w", err)
	}
	for o, head := range s.heads {
		if head > s.sealed[o] {
			s.hotSince[o] = time.Now()
		}
	}
	go s.writer()
	if sealAfter > 0 {
		go s.sealer()
	} else {
		close(s.sealerDone)
	}
	return s, nil
}

// load reads the sequence number, the origins and their marks, and the
// usage of every stream.
func (s *LogStore) load() error {
	err := s.db.Update(func(txn *badger.Txn) error {
		_, ferr := txn.Get([]byte(keyFormat))
		_, serr := txn.Get([]byte(keySeq))
		switch {
		case errors.Is(ferr, badger.ErrKeyNotFound) && serr == nil:
			return errors.New("the log database was written by an older version with another key layout; move it away to start afresh")
		case errors.Is(ferr, badger.ErrKeyNotFound):
			if err := txn.Set([]byte(keyFormat), []byte(logFormat)); err != nil {
				return err
			}
		case ferr != nil:
			return ferr
		}
		item, err := txn.Get([]byte(keySelf))
		switch {
		case err == nil:
			v, err := item.ValueCopy(nil)
			s.origin = string(v)
			return err
		case !errors.Is(err, badger.ErrKeyNotFound):
			return err
		case serr == nil:
			// Written before databases had an origin of their own: its
			// records already carry the node ID.
			s.origin = s.nodeID
		default:
			s.origin = s.nodeID + "@" + strings.ToLower(rand.Text()[:8])
		}
		return txn.Set([]byte(keySelf), []byte(s.origin))
	})
	if err != nil {
		return err
	}
	if err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("m/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := string(it.Item().Key())
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if name, ok := strings.CutPrefix(k, prefixDict); ok && len(v) == 4 {
				n := binary.BigEndian.Uint32(v)
				s.origins[name], s.names[n] = n, name
			}
			if name, ok := strings.CutPrefix(k, prefixMark); ok && len(v) == 8 {
				s.heads[name] = beUint64(v)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("cannot read the origins: %w", err)
	}
	self, err := s.originNumber(s.origin)
	if err != nil {
		return err
	}
	s.self = self
	return s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte(keySeq))
		switch {
		case err == nil:
			if err := item.Value(func(v []byte) error {
				if len(v) != 8 {
					return errCorrupt
				}
				s.seq = beUint64(v)
				s.heads[s.origin] = s.seq
				return nil
			}); err != nil {
				return fmt.Errorf("cannot read the write sequence: %w", err)
			}
		case !errors.Is(err, badger.ErrKeyNotFound):
			return fmt.Errorf("cannot read the write sequence: %w", err)
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixUsage}, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			stream := string(it.Item().Key()[1:])
			if err := it.Item().Value(func(v []byte) error {
				u, err := decodeUsage(v)
				s.usage[stream] = u
				return err
			}); err != nil {
				return fmt.Errorf("cannot read the usage of stream %q: %w", stream, err)
			}
		}
		return nil
	})
}

func (u *usage) add(ts uint64, size int64) {
	if u.records == 0 || ts < u.oldest {
		u.oldest = ts
	}
	if u.records == 0 || ts > u.newest {
		u.newest = ts
	}
	u.records++
	u.bytes += size
}

func (s *LogStore) streamUsage(stream string) usage {
	s.usageMu.RLock()
	defer s.usageMu.RUnlock()
	return s.usage[stream]
}

// Usage returns what a stream holds.
func (s *LogStore) Usage(stream string) flowg.StreamUsage {
	u := s.streamUsage(stream)
	out := flowg.StreamUsage{Records: u.records, Bytes: u.bytes}
	if u.records > 0 {
		out.Oldest, out.Newest = timeOf(u.oldest), timeOf(u.newest)
	}
	return out
}

// Streams returns the names of every stream.
func (s *LogStore) Streams() []string {
	names := s.cfg.StreamNames()
	slices.Sort(names)
	return names
}

// Settings returns the settings of a stream.
func (s *LogStore) Settings(stream string) (flowg.StreamSettings, error) {
	st, ok := s.cfg.Stream(stream)
	if !ok {
		return st, fmt.Errorf("stream %q: %w", stream, flowg.ErrNotFound)
	}
	return st, nil
}

func (s *LogStore) close() error {
	s.closeMu.Lock()
	already := s.closed
	s.closed = true
	s.closeMu.Unlock()
	if already {
		return nil
	}
	close(s.quit)
	<-s.stopped
	<-s.sealerDone
	s.subsMu.Lock()
	for _, set := range s.subs {
		for sub := range set {
			close(sub.c)
		}
	}
	s.subs = map[string]map[*Subscription]struct{}{}
	s.subsMu.Unlock()
	return s.db.Close()
}

// Helpers on big-endian IDs.

func beUint64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func putBE(b []byte, v uint64) {
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func beBytes(v uint64) []byte {
	b := make([]byte, 8)
	putBE(b, v)
	return b
}

// increment adds one to id; false when it overflows.
func increment(id *recordID) bool {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			return true
		}
	}
	return false
}

func decrement(id *recordID) {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]--
		if id[i] != math.MaxUint8 {
			return
		}
	}
}

func maxID(a, b recordID) recordID {
	if bytes.Compare(a[:], b[:]) >= 0 {
		return a
	}
	return b
}

func minID(a, b recordID) recordID {
	if bytes.Compare(a[:], b[:]) <= 0 {
		return a
	}
	return b
}
