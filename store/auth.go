package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/crypto/argon2"

	flowg "github.com/flowg-server/flowg-server"
)

// Argon2Params are the parameters of the argon2id password hash.
type Argon2Params struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultArgon2 is RFC 9106's second recommended choice: 3 passes over 64 MiB.
var DefaultArgon2 = Argon2Params{Time: 3, Memory: 64 << 10, Threads: 2}

// AuthStore keeps users, roles and tokens in the auth database.
type AuthStore struct {
	db         *badger.DB
	meta       *metaDB
	argon      Argon2Params
	sessionTTL time.Duration
	waiting    atomic.Int32 // password checks waiting for a hashing slot
	// hashing bounds concurrent password hashes: each takes argon.Memory.
	hashing chan struct{}
	// dummyHash is verified against for unknown users, so that a login takes
	// as long whether or not the user exists.
	dummyHash string
}

const (
	prefixUser  = "user/"
	prefixRole  = "role/"
	prefixToken = "token/"
	tokenPrefix = "fgt_"
)

type userJSON struct {
	Hash  string   `json:"hash"`
	Roles []string `json:"roles"`
}

type roleJSON struct {
	Scopes []flowg.Scope `json:"scopes"`
}

type tokenJSON struct {
	User    string          `json:"user"`
	Kind    flowg.TokenKind `json:"kind"`
	Name    string          `json:"name,omitempty"`
	Hash    string          `json:"hash"` // hex SHA-256 of the secret
	Created time.Time       `json:"created"`
	Expires time.Time       `json:"expires,omitzero"`
}

func openAuth(dir string, syncWrites bool, log *slog.Logger, argon Argon2Params, sessionTTL time.Duration, clock *hlc) (*AuthStore, error) {
	db, err := openBadger(dir, syncWrites, log, smallDB)
	if err != nil {
		return nil, err
	}
	a := &AuthStore{db: db, meta: newMetaDB("auth", db, clock), argon: argon, sessionTTL: sessionTTL, hashing: make(chan struct{}, 2)}
	if a.dummyHash, err = a.hash(context.Background(), "dummy password"); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

// bootstrap makes sure the admin role exists and, when no user exists,
// creates the initial user with it. It reports whether the user was created
// and whether the initial user still has the default password.
func (a *AuthStore) bootstrap(ctx context.Context, user, password, defaultPassword string) (created, defaultInUse bool, err error) {
	if err := a.putBoot(prefixRole+flowg.AdminRole, roleJSON{Scopes: flowg.AllScopes}); err != nil {
		return false, false, fmt.Errorf("cannot create the admin role: %w", err)
	}
	users, err := a.Users()
	if err != nil {
		return false, false, err
	}
	if len(users) == 0 {
		if err := a.putUser(ctx, user, password, []string{flowg.AdminRole}, true); err != nil {
			return false, false, fmt.Errorf("cannot create the initial user: %w", err)
		}
		created = true
	}
	if password == defaultPassword {
		if _, err := a.Login(ctx, user, password); err == nil {
			defaultInUse = true
		}
	}
	return created, defaultInUse, nil
}

// hash returns the argon2id hash of password in the PHC string format.
func (a *AuthStore) hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, 16)
	rand.Read(salt)
	if err := a.acquire(ctx); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, a.argon.Time, a.argon.Memory, a.argon.Threads, 32)
	<-a.hashing
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		a.argon.Memory, a.argon.Time, a.argon.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// maxHashWaiters bounds the password checks waiting for a hashing slot;
// past it a login is refused at once (flowg.ErrBusy) instead of waiting
// behind a flood.
const maxHashWaiters = 32

func (a *AuthStore) acquire(ctx context.Context) error {
	if a.waiting.Add(1) > maxHashWaiters {
		a.waiting.Add(-1)
		return flowg.ErrBusy
	}
	defer a.waiting.Add(-1)
	select {
	case a.hashing <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// verify checks password against a PHC argon2id hash in constant time.
func (a *AuthStore) verify(ctx context.Context, phc, password string) (bool, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("stored password hash is not argon2id")
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, fmt.Errorf("stored password hash has bad parameters: %w", err)
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err := errors.Join(err1, err2); err != nil {
		return false, fmt.Errorf("stored password hash is malformed: %w", err)
	}
	if err := a.acquire(ctx); err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	<-a.hashing
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// Login checks a user's password and opens a session token.
func (a *AuthStore) Login(ctx context.Context, user, password string) (string, error) {
	var u userJSON
	err := a.getJSON(prefixUser+user, &u)
	if errors.Is(err, flowg.ErrNotFound) {
		a.verify(ctx, a.dummyHash, password)
		return "", flowg.ErrBadCredentials
	} else if err != nil {
		return "", err
	}
	ok, err := a.verify(ctx, u.Hash, password)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", flowg.ErrBadCredentials
	}
	if err := a.sweepExpired(user, time.Now()); err != nil {
		return "", err
	}
	token, _, err := a.newToken(user, flowg.TokenSession, "", time.Now().Add(a.sessionTTL))
	return token, err
}

// sweepExpired deletes the expired tokens of user, so that sessions that are
// never presented again do not pile up: each login sweeps its user's.
func (a *AuthStore) sweepExpired(user string, now time.Time) error {
	tokens, err := a.Tokens(user)
	if err != nil {
		return err
	}
	return a.meta.update(func(t *metaTxn) error {
		for _, tok := range tokens {
			if !tok.Expires.IsZero() && now.After(tok.Expires) {
				if err := t.del(prefixToken + tok.ID); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// CreateToken makes a personal access token for user, which acts with the
// user's roles until it is revoked.
func (a *AuthStore) CreateToken(user, name string) (string, flowg.TokenInfo, error) {
	if len(name) > 128 {
		return "", flowg.TokenInfo{}, fmt.Errorf("%w: token name is longer than 128 bytes", flowg.ErrInvalid)
	}
	return a.newToken(user, flowg.TokenPersonal, name, time.Time{})
}

// newToken stores a token and returns its text, fgt_<id>_<secret>. Only the
// SHA-256 of the secret is stored.
func (a *AuthStore) newToken(user string, kind flowg.TokenKind, name string, expires time.Time) (string, flowg.TokenInfo, error) {
	idb, secret := make([]byte, 9), make([]byte, 32)
	rand.Read(idb)
	rand.Read(secret)
	id := hex.EncodeToString(idb)
	sec := base64.RawURLEncoding.EncodeToString(secret)
	sum := sha256.Sum256([]byte(sec))
	t := tokenJSON{User: user, Kind: kind, Name: name, Hash: hex.EncodeToString(sum[:]), Created: time.Now().UTC(), Expires: expires.UTC()}
	if expires.IsZero() {
		t.Expires = time.Time{}
	}
	if err := a.putJSON(prefixToken+id, t); err != nil {
		return "", flowg.TokenInfo{}, fmt.Errorf("cannot store token: %w", err)
	}
	return tokenPrefix + id + "_" + sec, t.info(id), nil
}

func (t tokenJSON) info(id string) flowg.TokenInfo {
	return flowg.TokenInfo{ID: id, User: t.User, Kind: t.Kind, Name: t.Name, Created: t.Created, Expires: t.Expires}
}

// Authenticate resolves a token to the principal it acts as. The secret is
// compared in constant time.
func (a *AuthStore) Authenticate(token string) (flowg.Principal, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	id, sec, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 18 || len(sec) != 43 {
		return flowg.Principal{}, flowg.ErrBadToken
	}
	var t tokenJSON
	if err := a.getJSON(prefixToken+id, &t); err != nil {
		if errors.Is(err, flowg.ErrNotFound) {
			return flowg.Principal{}, flowg.ErrBadToken
		}
		return flowg.Principal{}, err
	}
	sum := sha256.Sum256([]byte(sec))
	want, err := hex.DecodeString(t.Hash)
	if err != nil || subtle.ConstantTimeCompare(sum[:], want) != 1 {
		return flowg.Principal{}, flowg.ErrBadToken
	}
	if !t.Expires.IsZero() && time.Now().After(t.Expires) {
		a.delete(prefixToken + id)
		return flowg.Principal{}, flowg.ErrBadToken
	}
	scopes, err := a.scopesOf(t.User)
	if err != nil {
		return flowg.Principal{}, err
	}
	return flowg.Principal{User: t.User, Scopes: scopes, TokenID: id}, nil
}

func (a *AuthStore) scopesOf(user string) (map[flowg.Scope]bool, error) {
	var u userJSON
	if err := a.getJSON(prefixUser+user, &u); err != nil {
		if errors.Is(err, flowg.ErrNotFound) {
			return nil, flowg.ErrBadToken // the user was deleted
		}
		return nil, err
	}
	return a.scopesOfRoles(u.Roles)
}

// scopesOfRoles is the union of the roles' scopes; a role deleted after it
// was given gives none.
func (a *AuthStore) scopesOfRoles(roles []string) (map[flowg.Scope]bool, error) {
	scopes := map[flowg.Scope]bool{}
	for _, r := range roles {
		var role roleJSON
		if err := a.getJSON(prefixRole+r, &role); err != nil {
			if errors.Is(err, flowg.ErrNotFound) {
				continue
			}
			return nil, err
		}
		for _, s := range role.Scopes {
			scopes[s] = true
		}
	}
	return scopes, nil
}

// knownRoles sorts and dedups roles, and checks that each exists.
func (a *AuthStore) knownRoles(roles []string) ([]string, error) {
	roles = slices.Compact(slices.Sorted(slices.Values(roles)))
	for _, r := range roles {
		var role roleJSON
		if err := a.getJSON(prefixRole+r, &role); err != nil {
			if errors.Is(err, flowg.ErrNotFound) {
				return nil, fmt.Errorf("%w %q", flowg.ErrUnknownRole, r)
			}
			return nil, err
		}
	}
	return roles, nil
}

// Tokens lists the tokens of user.
func (a *AuthStore) Tokens(user string) ([]flowg.TokenInfo, error) {
	var out []flowg.TokenInfo
	err := a.scan(prefixToken, func(key string, v []byte) error {
		var t tokenJSON
		if err := json.Unmarshal(v, &t); err != nil {
			return err
		}
		if t.User == user {
			out = append(out, t.info(key))
		}
		return nil
	})
	return out, err
}

// RevokeToken deletes the token id of user.
func (a *AuthStore) RevokeToken(user, id string) error {
	var t tokenJSON
	if err := a.getJSON(prefixToken+id, &t); err != nil {
		return err
	}
	if t.User != user {
		return flowg.ErrNotFound
	}
	return a.delete(prefixToken + id)
}

// Users lists every user.
func (a *AuthStore) Users() ([]flowg.User, error) {
	return scanAll(a, prefixUser, func(name string, u userJSON) flowg.User { return flowg.User{Name: name, Roles: u.Roles} })
}

// User returns one user.
func (a *AuthStore) User(name string) (flowg.User, error) {
	var u userJSON
	if err := a.getJSON(prefixUser+name, &u); err != nil {
		return flowg.User{}, err
	}
	return flowg.User{Name: name, Roles: u.Roles}, nil
}

// PutUser creates or changes a user. An empty password keeps the current
// one; a new user needs one of at least flowg.MinPasswordLen bytes.
func (a *AuthStore) PutUser(ctx context.Context, name, password string, roles []string) error {
	return a.putUser(ctx, name, password, roles, false)
}

func (a *AuthStore) putUser(ctx context.Context, name, password string, roles []string, initial bool) error {
	if err := flowg.ValidateName("user", name); err != nil {
		return fmt.Errorf("%w: %v", flowg.ErrInvalid, err)
	}
	if len(password) > flowg.MaxPasswordLen {
		return fmt.Errorf("%w: password is longer than %d bytes", flowg.ErrInvalid, flowg.MaxPasswordLen)
	}
	if password != "" && len(password) < flowg.MinPasswordLen && !initial {
		return fmt.Errorf("%w: password is shorter than %d bytes", flowg.ErrInvalid, flowg.MinPasswordLen)
	}
	roles, err := a.knownRoles(roles)
	if err != nil {
		return err
	}
	var u userJSON
	err = a.getJSON(prefixUser+name, &u)
	switch {
	case errors.Is(err, flowg.ErrNotFound) && password == "":
		return fmt.Errorf("%w: a new user needs a password", flowg.ErrInvalid)
	case err != nil && !errors.Is(err, flowg.ErrNotFound):
		return err
	}
	if password != "" {
		if u.Hash, err = a.hash(ctx, password); err != nil {
			return err
		}
	}
	u.Roles = roles
	if initial {
		// Every node makes the initial user by itself: the cluster's
		// version of it, if any, wins.
		return a.putBoot(prefixUser+name, u)
	}
	return a.putJSON(prefixUser+name, u)
}

// DeleteUser deletes a user and every token of theirs.
func (a *AuthStore) DeleteUser(name string) error {
	if _, err := a.User(name); err != nil {
		return err
	}
	tokens, err := a.Tokens(name)
	if err != nil {
		return err
	}
	return a.meta.update(func(t *metaTxn) error {
		for _, tok := range tokens {
			if err := t.del(prefixToken + tok.ID); err != nil {
				return err
			}
		}
		return t.del(prefixUser + name)
	})
}

// Roles lists every role.
func (a *AuthStore) Roles() ([]flowg.Role, error) {
	return scanAll(a, prefixRole, func(name string, r roleJSON) flowg.Role { return flowg.Role{Name: name, Scopes: r.Scopes} })
}

// Role returns one role.
func (a *AuthStore) Role(name string) (flowg.Role, error) {
	var r roleJSON
	if err := a.getJSON(prefixRole+name, &r); err != nil {
		return flowg.Role{}, err
	}
	return flowg.Role{Name: name, Scopes: r.Scopes}, nil
}

// PutRole creates or changes a role.
func (a *AuthStore) PutRole(name string, scopes []flowg.Scope) error {
	if err := flowg.ValidateName("role", name); err != nil {
		return fmt.Errorf("%w: %v", flowg.ErrInvalid, err)
	}
	if name == flowg.AdminRole {
		return flowg.ErrBuiltin
	}
	scopes = slices.Compact(slices.Sorted(slices.Values(scopes)))
	for _, s := range scopes {
		if !flowg.ValidScope(s) {
			return fmt.Errorf("%w: unknown scope %q (known: %v)", flowg.ErrInvalid, s, flowg.AllScopes)
		}
	}
	if scopes == nil {
		scopes = []flowg.Scope{}
	}
	return a.putJSON(prefixRole+name, roleJSON{Scopes: scopes})
}

// DeleteRole deletes a role; users who had it lose its scopes.
func (a *AuthStore) DeleteRole(name string) error {
	if name == flowg.AdminRole {
		return flowg.ErrBuiltin
	}
	if _, err := a.Role(name); err != nil {
		return err
	}
	return a.delete(prefixRole + name)
}

// Key-value helpers, on versioned values.

func (a *AuthStore) getJSON(key string, v any) error {
	b, err := a.meta.get(key)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (a *AuthStore) putJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.meta.update(func(t *metaTxn) error { return t.set(key, b) })
}

// putBoot stores what every node creates by itself, with the boot version.
func (a *AuthStore) putBoot(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return a.meta.update(func(t *metaTxn) error { return t.setBoot(key, b) })
}

func (a *AuthStore) delete(key string) error {
	return a.meta.update(func(t *metaTxn) error { return t.del(key) })
}

func (a *AuthStore) scan(prefix string, fn func(name string, v []byte) error) error {
	return a.meta.scan(prefix, fn)
}

// scanAll decodes every value under prefix as a J and maps it to an R.
func scanAll[J, R any](a *AuthStore, prefix string, to func(name string, v J) R) ([]R, error) {
	var out []R
	err := a.scan(prefix, func(name string, b []byte) error {
		var v J
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		out = append(out, to(name, v))
		return nil
	})
	return out, err
}

func (a *AuthStore) close() error { return a.db.Close() }
