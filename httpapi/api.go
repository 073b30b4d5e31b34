package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	flowg "github.com/flowg-server/flowg-server"
)

// LogStore is what the API needs of the log store.
type LogStore interface {
	Append(ctx context.Context, stream string, recs []flowg.Record) error
	Query(ctx context.Context, q flowg.Query) (flowg.Page, error)
	// Scan visits every record of q's window that matches its filter, from
	// opt.Workers goroutines at once (part is 0 to Workers-1), with fields
	// valid only during the call; past opt.MaxScan entries read it fails
	// with flowg.ErrLimit.
	Scan(ctx context.Context, q flowg.Query, opt flowg.ScanOptions, visit func(part int, ts time.Time, fields map[string]string) error) (int64, error)
	Subscribe(stream string) flowg.Subscription
	Streams() []string
	Usage(stream string) flowg.StreamUsage
	Settings(stream string) (flowg.StreamSettings, error)
	PutSettings(ctx context.Context, stream string, s flowg.StreamSettings) error
	Purge(ctx context.Context, stream string) error
}

// AuthStore is what the API needs of the auth store.
type AuthStore interface {
	Login(ctx context.Context, user, password string) (string, error)
	Authenticate(token string) (flowg.Principal, error)
	CreateToken(user, name string) (string, flowg.TokenInfo, error)
	Tokens(user string) ([]flowg.TokenInfo, error)
	RevokeToken(user, id string) error
	Users() ([]flowg.User, error)
	User(name string) (flowg.User, error)
	PutUser(ctx context.Context, name, password string, roles []string) error
	DeleteUser(name string) error
	Roles() ([]flowg.Role, error)
	Role(name string) (flowg.Role, error)
	PutRole(name string, scopes []flowg.Scope) error
	MeshGrants() ([]flowg.MeshGrant, error)
	PutMeshGrant(service string, roles []string) error
	DeleteMeshGrant(service string) error
	AuthenticateMesh(id flowg.MeshIdentity) (flowg.Principal, error)
	DeleteRole(name string) error
}

// ClusterView lists the nodes of the cluster.
type ClusterView interface {
	Nodes() []flowg.Node
}

// Replication says which origins' records this node does not hold yet.
type Replication interface {
	Lag() []flowg.OriginLag
}

// Peers says whether the cluster's other nodes refuse this one (a clock
// offset, another cookie), in words, and whether all of them do.
type Peers interface {
	Problems() (problems []string, isolated bool)
}

// Limits bound what a client may send.
type Limits struct {
	// MaxBodyBytes bounds an ingest request body. Default 8 MiB.
	MaxBodyBytes int64
	// MaxQueryLimit bounds the limit parameter of a query. Default 10,000.
	MaxQueryLimit int
	// MaxWatchers bounds the live tails open at once. Default 256.
	MaxWatchers int
	// LoginFailuresPerUser and LoginFailuresPerAddr are the failed logins
	// a minute allowed for one user name and from one IP address before
	// logins answer 429. Defaults 10 and 30.
	LoginFailuresPerUser, LoginFailuresPerAddr int
	// MaxIngestInFlight bounds the bytes of ingest bodies being read,
	// parsed and stored at once; past it ingest answers 429 with
	// Retry-After. Default 64 MiB.
	MaxIngestInFlight int64
	// MaxStatsScan bounds the records and index entries one stats or
	// fields question reads; past it the answer is 422. Default 50,000,000.
	MaxStatsScan int64
	// MaxStatsGroups bounds the groups of one stats answer (buckets times
	// by values); past it the answer is 422. Default 10,000.
	MaxStatsGroups int
	// MaxStatsInFlight bounds the stats and fields questions computed at
	// once; others wait their turn. Default 4.
	MaxStatsInFlight int
	// MaxStatsBytes bounds the memory one stats question holds (groups,
	// distinct values, sketches); past it the answer is 422. Default 32 MiB.
	MaxStatsBytes int64
}

// DefaultLimits returns the documented limits.
func DefaultLimits() Limits {
	return Limits{MaxBodyBytes: 8 << 20, MaxQueryLimit: 10_000, MaxWatchers: 256,
		LoginFailuresPerUser: 10, LoginFailuresPerAddr: 30, MaxIngestInFlight: 64 << 20,
		MaxStatsScan: 50_000_000, MaxStatsGroups: 10_000, MaxStatsInFlight: 4, MaxStatsBytes: 32 << 20}
}

// RegisterFlags registers the login throttle's flags
// (--auth-login-failures-per-user and --auth-login-failures-per-address)
// and the bounds of stats questions (--stats-max-scan, --stats-max-groups).
func (l *Limits) RegisterFlags(fs *flag.FlagSet) {
	fs.Int64Var(&l.MaxStatsScan, "stats-max-scan", l.MaxStatsScan, "records a stats or fields question may read before it answers 422")
	fs.IntVar(&l.MaxStatsGroups, "stats-max-groups", l.MaxStatsGroups, "groups a stats answer may hold before it answers 422")
	fs.IntVar(&l.LoginFailuresPerUser, "auth-login-failures-per-user", l.LoginFailuresPerUser, "failed logins a minute allowed for one user name before logins for it answer 429")
	fs.IntVar(&l.LoginFailuresPerAddr, "auth-login-failures-per-address", l.LoginFailuresPerAddr, "failed logins a minute allowed from one IP address before its logins answer 429")
}

// Validate checks the limits a user sets; each error names its flag.
func (l Limits) Validate() error {
	if l.LoginFailuresPerUser < 1 {
		return fmt.Errorf("--auth-login-failures-per-user %d: must be at least 1", l.LoginFailuresPerUser)
	}
	if l.MaxStatsScan < 1 {
		return fmt.Errorf("--stats-max-scan %d: must be at least 1", l.MaxStatsScan)
	}
	if l.MaxStatsGroups < 1 {
		return fmt.Errorf("--stats-max-groups %d: must be at least 1", l.MaxStatsGroups)
	}
	if l.LoginFailuresPerAddr < 1 {
		return fmt.Errorf("--auth-login-failures-per-address %d: must be at least 1", l.LoginFailuresPerAddr)
	}
	return nil
}

// maxAdminBody bounds the body of every request but ingest.
const maxAdminBody = 64 << 10

// Config wires the API to the stores.
type Config struct {
	Logs    LogStore
	Auth    AuthStore
	Cluster ClusterView
	// Replication, when set, adds to each query answer the origins this
	// node is behind.
	Replication Replication
	// Peers, when set, makes /ready say why peers refuse this node, and
	// answer 503 while every peer does.
	Peers  Peers
	Limits Limits
	// Logger receives the API's log lines. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the API's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Gatherer is served at /metrics; nil serves the default gatherer.
	Gatherer prometheus.Gatherer
	// Self is this node's ID and Discovery says where it looks for peers,
	// for the public cluster view.
	Self      string
	Discovery []string
	// Heartbeat is how often a live tail sends a keep-alive comment.
	// Default 15s.
	Heartbeat time.Duration
}

// API holds the handlers of both servers.
type API struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	ready    atomic.Bool
	draining atomic.Bool
	watchers atomic.Int64
	// stop ends every live tail when shutdown begins.
	stop       chan struct{}
	stopCalled atomic.Bool

	loginByUser, loginByAddr *throttle
	loginsInFlight           inFlight
	inflight                 *semaphore.Weighted // bytes of ingest bodies in flight
	questions                *semaphore.Weighted // stats and fields questions being computed
}

// orDefault sets *v to d when it is not positive.
func orDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// New returns an API; it serves nothing until its handlers are mounted.
func New(cfg Config) (*API, error) {
	if cfg.Logs == nil || cfg.Auth == nil || cfg.Cluster == nil {
		return nil, errors.New("httpapi: Logs, Auth and Cluster are required")
	}
	d, l := DefaultLimits(), &cfg.Limits
	orDefault(&l.MaxBodyBytes, d.MaxBodyBytes)
	orDefault(&l.MaxQueryLimit, d.MaxQueryLimit)
	orDefault(&l.MaxWatchers, d.MaxWatchers)
	orDefault(&l.LoginFailuresPerUser, d.LoginFailuresPerUser)
	orDefault(&l.LoginFailuresPerAddr, d.LoginFailuresPerAddr)
	orDefault(&l.MaxIngestInFlight, d.MaxIngestInFlight)
	orDefault(&l.MaxStatsScan, d.MaxStatsScan)
	orDefault(&l.MaxStatsGroups, d.MaxStatsGroups)
	orDefault(&l.MaxStatsInFlight, d.MaxStatsInFlight)
	orDefault(&l.MaxStatsBytes, d.MaxStatsBytes)
	orDefault(&cfg.Heartbeat, 15*time.Second)
	// One body never holds more than the whole budget of bodies in flight.
	l.MaxBodyBytes = min(l.MaxBodyBytes, l.MaxIngestInFlight)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("component", "httpapi"), stop: make(chan struct{})}
	a.loginByUser = newThrottle("user", cfg.Limits.LoginFailuresPerUser, a.log)
	a.loginByAddr = newThrottle("address", cfg.Limits.LoginFailuresPerAddr, a.log)
	a.inflight = semaphore.NewWeighted(cfg.Limits.MaxIngestInFlight)
	a.questions = semaphore.NewWeighted(int64(cfg.Limits.MaxStatsInFlight))
	a.m = newMetrics(cfg.Registerer)
	return a, nil
}

// SetReady marks the node ready (or not) on /ready.
func (a *API) SetReady(ok bool) { a.ready.Store(ok) }

// StopIngest makes ingest requests answer 503 from now on and ends every
// live tail; it is the first step of shutdown.
func (a *API) StopIngest() {
	a.draining.Store(true)
	a.ready.Store(false)
	if a.stopCalled.CompareAndSwap(false, true) {
		close(a.stop)
	}
}

// NewServer returns an http.Server with the timeouts and header limit every
// flowg listener uses; tlsConfig may be nil.
func NewServer(h http.Handler, tlsConfig *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/2 (over TLS, or h2c on the management port): bounded streams
		// per connection and receive windows, so one connection cannot hold
		// many bodies at once.
		HTTP2:          &http.HTTP2Config{MaxConcurrentStreams: 64, MaxReceiveBufferPerConnection: 4 << 20, MaxReceiveBufferPerStream: 1 << 20},
		ReadTimeout:    60 * time.Second,
		WriteTimeout:   60 * time.Second, // live tails lift it for themselves
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// bearer extracts the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}
