package store

import (
	"context"
	"errors"
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
	// NodeID is this node's ID: the origin of the records it takes and of
	// its changes to users, roles, tokens and settings. Default "local".
	NodeID string
	// Logger receives the stores' log lines. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the stores' metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// DefaultPassword is the initial password when none is given.
const DefaultPassword = "root"

// DefaultConfig returns a Config with data under ./data.
func DefaultConfig() Config {
	return Config{
		AuthDir: "data/auth", LogDir: "data/logs", ConfigDir: "data/config",
		InitialUser: "root", InitialPassword: DefaultPassword,
		SessionTTL: 24 * time.Hour, Argon2: DefaultArgon2, MaxScan: 1_000_000,
		Logger: slog.Default(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.AuthDir == "" || c.LogDir == "" || c.ConfigDir == "":
		return errors.New("store: the auth, log and config directories are required")
	case c.SessionTTL <= 0:
		return errors.New("store: session TTL must be positive")
	case c.MaxScan <= 0:
		return errors.New("store: max scan must be positive")
	case c.Argon2.Time == 0 || c.Argon2.Memory < 8 || c.Argon2.Threads == 0:
		return errors.New("store: argon2 parameters are too small")
	}
	return nil
}

// Store holds the three databases.
type Store struct {
	Logs *LogStore
	Auth *AuthStore
	cfg  *ConfigStore
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
	logs, err := openLogs(c.LogDir, c.SyncWrites, cfg, newMetrics(), log.With("db", "logs"), c.MaxScan, nodeID)
	if err != nil {
		cfg.close()
		auth.close()
		return nil, fmt.Errorf("cannot open log store: %w", err)
	}
	cfg.meta.origin.Store(&nodeID)
	auth.meta.origin.Store(&nodeID)
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
