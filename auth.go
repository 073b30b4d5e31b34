package flowg

import (
	"fmt"
	"regexp"
	"time"
)

// Scope is a permission a role grants.
type Scope string

// The scopes a role may grant.
const (
	ScopeReadStreams  Scope = "read_streams"  // query, tail and list streams and their settings
	ScopeWriteStreams Scope = "write_streams" // change stream settings, purge streams
	ScopeSendLogs     Scope = "send_logs"     // ingest records
	ScopeReadACLs     Scope = "read_acls"     // list users and roles
	ScopeWriteACLs    Scope = "write_acls"    // create, change and delete users and roles
)

// AllScopes lists every scope, in a stable order.
var AllScopes = []Scope{ScopeReadStreams, ScopeWriteStreams, ScopeSendLogs, ScopeReadACLs, ScopeWriteACLs}

// AdminRole is the built-in role that holds every scope; it cannot be
// changed or deleted.
const AdminRole = "admin"

// ValidScope reports whether s names a scope.
func ValidScope(s Scope) bool {
	for _, k := range AllScopes {
		if s == k {
			return true
		}
	}
	return false
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$`)

// ValidateName checks a user or role name: 1 to 64 letters, digits and
// '_', '.', '@', '-', not starting with a punctuation mark.
func ValidateName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s name %.70q is not 1 to 64 letters, digits, '_', '.', '@' or '-'", kind, name)
	}
	return nil
}

// MinPasswordLen is the shortest password a user may be given through the API.
const MinPasswordLen = 8

// MaxPasswordLen bounds a password, in bytes.
const MaxPasswordLen = 1024

// User is an account.
type User struct {
	Name  string
	Roles []string
}

// Role is a named set of scopes.
type Role struct {
	Name   string
	Scopes []Scope
}

// Principal is who an authenticated request acts as.
type Principal struct {
	User   string
	Scopes map[Scope]bool
	// TokenID is the ID of the token the request presented.
	TokenID string
}

// Has reports whether the principal holds scope s.
func (p Principal) Has(s Scope) bool { return p.Scopes[s] }

// TokenKind tells a login session from a personal access token.
type TokenKind string

// The kinds of token.
const (
	TokenSession  TokenKind = "session"
	TokenPersonal TokenKind = "personal"
)

// TokenInfo describes a token without its secret.
type TokenInfo struct {
	ID      string
	User    string
	Kind    TokenKind
	Name    string
	Created time.Time
	// Expires is zero for a token that does not expire.
	Expires time.Time
}

// MeshGrant gives roles to a Consul service-mesh service: a request that
// arrives over a Connect connection from that service, with no bearer
// token, acts with the roles' scopes.
type MeshGrant struct {
	Service string
	Roles   []string
}
