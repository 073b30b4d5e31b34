package store

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config says where the databases live and how they behave.
type Config struct {
	// AuthDir, LogDir and ConfigDir are the directories of the auth, log and
	// config databases. Each is created if missing. Required.
	AuthDir, LogDir, ConfigDir string
	// SyncWrites makes every commit wait for fsync, so that acknowledged
	// records survive power loss, not only a crash of the process.
	// Default false.
	SyncWrites bool
	// InitialUser and InitialPassword make the first account, with the admin
	// role, when the auth database has no user. Default root/root.
	InitialUser, InitialPassword string
	// SessionTTL is how long a login token lasts. Default 24h.
	SessionTTL time.Duration
	// Argon2 are the password hashing parameters. Default DefaultArgon2.
	Argon2 Argon2Params
	// MaxScan bounds the records and index entries one query page reads.
	// Default 1,000,000.
	MaxScan int
	// MemoryBudget is the memory the stores may use, in bytes: the log
	// database's memtables and caches are sized from it (see
	// logDBOptions). Default 512 MiB.
	MemoryBudget int64
	// NodeID is this node's ID: the origin of the records it takes and of
	// its changes to users, roles, tokens and settings. Default "local".
	NodeID string
	// SealAfter is how long a record stays a row, in the layout that takes
	// writes, before it is sealed into a block when its origin has fewer
	// than a block's worth of rows (see seal.go). Default
	// DefaultSealAfter; 0 keeps every record a row (the layout of
	// versions before blocks).
	SealAfter time.Duration
	// Logger receives the stores' log lines. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the stores' metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// metaReserve is the free space the auth and config databases stop
// writing at: their memtables (8 MiB) and a table flushed from one.
const metaReserve = 24 << 20

// DefaultPassword is the initial password when none is given.
const DefaultPassword = "root"

// DefaultConfig returns a Config with data under ./data.
func DefaultConfig() Config {
	return Config{
		AuthDir: "./data/auth", LogDir: "./data/logs", ConfigDir: "./data/config",
		InitialUser: "root", InitialPassword: DefaultPassword,
		SessionTTL: 24 * time.Hour, Argon2: DefaultArgon2, MaxScan: 1_000_000, MemoryBudget: DefaultMemoryBudget,
		SealAfter: DefaultSealAfter, Logger: slog.Default(),
	}
}

// RegisterFlags registers the stores' flags: the three directories, the
// initial user, --log-seal-after and --log-sync-writes.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.AuthDir, "auth-dir", c.AuthDir, "auth database directory")
	fs.StringVar(&c.LogDir, "log-dir", c.LogDir, "log database directory")
	fs.StringVar(&c.ConfigDir, "config-dir", c.ConfigDir, "config database directory")
	fs.StringVar(&c.InitialUser, "auth-initial-user", c.InitialUser, "initial user, created with the admin role when no user exists")
	fs.StringVar(&c.InitialPassword, "auth-initial-password", c.InitialPassword, "password of the initial user")
	fs.DurationVar(&c.SealAfter, "log-seal-after", c.SealAfter, "how long a record waits, at most, to be sealed into a compressed block (0: never, every record stays a row)")
	fs.BoolVar(&c.SyncWrites, "log-sync-writes", c.SyncWrites, "fsync every commit, so acknowledged records survive power loss")
}

// Validate checks the config; each error a user can cause names its flag.
func (c Config) Validate() error {
	switch {
	case c.AuthDir == "":
		return errors.New("--auth-dir must not be empty")
	case c.LogDir == "":
		return errors.New("--log-dir must not be empty")
	case c.ConfigDir == "":
		return errors.New("--config-dir must not be empty")
	case c.InitialUser == "" || c.InitialPassword == "":
		return errors.New("--auth-initial-user and --auth-initial-password must not be empty")
	case c.SessionTTL <= 0:
		return errors.New("store: session TTL must be positive")
	case c.SealAfter < 0:
		return errors.New("--log-seal-after must not be negative")
	case c.MaxScan <= 0:
		return errors.New("store: max scan must be positive")
	case c.MemoryBudget != 0 && c.MemoryBudget < 128<<20:
		return errors.New("store: the memory budget must be at least 128 MiB")
	case c.Argon2.Time == 0 || c.Argon2.Memory < 8 || c.Argon2.Threads == 0:
		return errors.New("store: argon2 parameters are too small")
	}
	return nil
}

// Store holds the three databases.
type Store struct {
	Logs *LogStore
	Auth *AuthStore
	cfg  *SettingsStore
	log  *slog.Logger
}

// Open opens the three databases and bootstraps the auth database.
func Open(ctx context.Context, c Config) (*Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "store")
	nodeID := c.NodeID
	if nodeID == "" {
		nodeID = "local"
	}
	clock := &hlc{}
	cfg, err := openConfig(c.ConfigDir, c.SyncWrites, log.With("db", "config"), clock)
	if err != nil {
		return nil, fmt.Errorf("cannot open config store: %w", err)
	}
	auth, err := openAuth(c.AuthDir, c.SyncWrites, log.With("db", "auth"), c.Argon2, c.SessionTTL, clock)
	if err != nil {
		cfg.close()
		return nil, fmt.Errorf("cannot open auth store: %w", err)
	}
	budget := c.MemoryBudget
	if budget == 0 {
		budget = DefaultMemoryBudget
	}
	logs, err := openLogs(c.LogDir, c.SyncWrites, cfg, newMetrics(c.Registerer), log.With("db", "logs"), c.MaxScan, nodeID, budget, c.SealAfter)
	if err != nil {
		cfg.close()
		auth.close()
		return nil, fmt.Errorf("cannot open log store: %w", err)
	}
	cfg.meta.origin.Store(&nodeID)
	auth.meta.origin.Store(&nodeID)
	// The auth and config databases take small writes (a login's session,
	// a setting): they stop at a smaller reserve than the log database,
	// so that logins still work while ingest is refused.
	cfg.meta.disk = newDiskGuard("config", c.ConfigDir, metaReserve, log.With("db", "config"))
	auth.meta.disk = newDiskGuard("auth", c.AuthDir, metaReserve, log.With("db", "auth"))
	s := &Store{Logs: logs, Auth: auth, cfg: cfg, log: log}
	created, defaultInUse, err := auth.bootstrap(ctx, c.InitialUser, c.InitialPassword, DefaultPassword)
	if err != nil {
		s.Close()
		return nil, err
	}
	if created && c.InitialPassword == DefaultPassword {
		log.Warn("created the initial user with the default password", "user", c.InitialUser, "password", DefaultPassword)
	} else if created {
		log.Info("created the initial user", "user", c.InitialUser)
	}
	if defaultInUse && !created {
		log.Warn("the initial user still has the default password; change it with PUT /api/v1/users/"+c.InitialUser, "user", c.InitialUser)
	}
	if c.Registerer != nil {
		if err := c.Registerer.Register(newCollector(s)); err != nil {
			s.Close()
			return nil, fmt.Errorf("cannot register store metrics: %w", err)
		}
	}
	return s, nil
}

func (s *Store) guards() []*diskGuard {
	return []*diskGuard{s.Logs.disk, s.Auth.meta.disk, s.Logs.cfg.meta.disk}
}

// Problems says which databases refuse writes for want of disk space.
func (s *Store) Problems() []string {
	var out []string
	for _, g := range s.guards() {
		if err := g.check(); err != nil {
			out = append(out, err.Error())
		}
	}
	return out
}

// Close closes the log, auth and config databases, in that order; the log
// store first commits every request already queued. It is safe to call more
// than once.
func (s *Store) Close() error {
	return errors.Join(s.Logs.close(), s.closeOnce())
}

func (s *Store) closeOnce() error {
	if s.cfg == nil {
		return nil
	}
	err := errors.Join(s.Auth.close(), s.cfg.close())
	s.cfg = nil
	return err
}
