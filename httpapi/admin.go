package httpapi

import (
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	flowg "github.com/flowg-server/flowg-server"
)

// clientIP is the address a request came from (no proxy header is
// trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// login checks a password and opens a session. Failed logins are counted
// per user name and per address; past the budget of either, logins answer
// 429 with Retry-After before any password is hashed. One address has at
// most maxLoginsInFlightPerAddr logins being checked at once, so that it
// cannot fill the queue of password hashes that every login waits in.
func (a *API) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.Username == "" || in.Password == "" {
		a.writeError(w, r, errorf(http.StatusBadRequest, "username and password are required"))
		return
	}
	now, addr := time.Now(), clientIP(r)
	if !a.loginsInFlight.enter(addr) {
		a.m.loginThrottled.Inc()
		w.Header().Set("Retry-After", "1")
		a.writeError(w, r, errorf(http.StatusTooManyRequests, "%d logins from this address are being checked already; retry shortly", maxLoginsInFlightPerAddr))
		return
	}
	defer a.loginsInFlight.leave(addr)
	d := a.loginByAddr.take(addr, now)
	// A name no user can have is not followed per user: the throttle's
	// keys stay names of at most 64 bytes, whatever the body holds.
	validName := flowg.ValidateName("user", in.Username) == nil
	if d == 0 && validName {
		if d = a.loginByUser.take(in.Username, now); d > 0 {
			a.loginByAddr.refund(addr)
		}
	}
	if d > 0 {
		a.m.loginThrottled.Inc()
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		a.writeError(w, r, errorf(http.StatusTooManyRequests, "too many failed logins for this user or from this address; retry in %s", d.Round(time.Second)))
		return
	}
	var tok string
	var err error
	if validName {
		tok, err = a.cfg.Auth.Login(r.Context(), in.Username, in.Password)
	} else {
		err = flowg.ErrBadCredentials
	}
	if !errors.Is(err, flowg.ErrBadCredentials) {
		// Only a wrong password counts against the budgets.
		a.loginByUser.refund(in.Username)
		a.loginByAddr.refund(addr)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}

// Streams.

type usageJSON struct {
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
	Oldest  string `json:"oldest,omitempty"`
	Newest  string `json:"newest,omitempty"`
}

type streamJSON struct {
	Name             string    `json:"name"`
	RetentionSeconds int64     `json:"retention_seconds"`
	RetentionBytes   int64     `json:"retention_bytes"`
	IndexedFields    []string  `json:"indexed_fields"`
	Usage            usageJSON `json:"usage"`
}

func (a *API) streamOut(name string, st flowg.StreamSettings) streamJSON {
	u := a.cfg.Logs.Usage(name)
	uj := usageJSON{Records: u.Records, Bytes: u.Bytes}
	if u.Records > 0 {
		uj.Oldest, uj.Newest = u.Oldest.Format(time.RFC3339Nano), u.Newest.Format(time.RFC3339Nano)
	}
	if st.IndexedFields == nil {
		st.IndexedFields = []string{}
	}
	return streamJSON{Name: name, RetentionSeconds: int64(st.RetentionTime / time.Second),
		RetentionBytes: st.RetentionSize, IndexedFields: st.IndexedFields, Usage: uj}
}

func (a *API) listStreams(w http.ResponseWriter, r *http.Request) {
	out := []streamJSON{}
	for _, name := range a.cfg.Logs.Streams() {
		if st, err := a.cfg.Logs.Settings(name); err == nil {
			out = append(out, a.streamOut(name, st))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"streams": out})
}

func (a *API) getStream(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	st, err := a.cfg.Logs.Settings(name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.streamOut(name, st))
}

func (a *API) putStream(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if err := flowg.ValidateStreamName(name); err != nil {
		a.writeError(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	var in struct {
		RetentionSeconds int64     `json:"retention_seconds"`
		RetentionBytes   int64     `json:"retention_bytes"`
		IndexedFields    *[]string `json:"indexed_fields"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.RetentionSeconds < 0 || in.RetentionSeconds > 100*365*24*3600 {
		a.writeError(w, r, errorf(http.StatusBadRequest, "retention_seconds must be from 0 (keep forever) to 100 years"))
		return
	}
	st := flowg.StreamSettings{RetentionTime: time.Duration(in.RetentionSeconds) * time.Second, RetentionSize: in.RetentionBytes}
	if in.IndexedFields != nil {
		st.IndexedFields = *in.IndexedFields
	} else {
		st.IndexedFields = append([]string(nil), flowg.DefaultIndexedFields...)
	}
	if err := a.cfg.Logs.PutSettings(r.Context(), name, st); err != nil {
		a.writeError(w, r, err)
		return
	}
	st, _ = a.cfg.Logs.Settings(name)
	writeJSON(w, http.StatusOK, a.streamOut(name, st))
}

func (a *API) deleteStream(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Logs.Purge(r.Context(), r.PathValue("stream")); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Users and roles.

type userJSON struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

func userOut(u flowg.User) userJSON {
	if u.Roles == nil {
		u.Roles = []string{}
	}
	return userJSON{u.Name, u.Roles}
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	users, err := a.cfg.Auth.Users()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := []userJSON{}
	for _, u := range users {
		out = append(out, userOut(u))
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) {
	u, err := a.cfg.Auth.User(r.PathValue("name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userOut(u))
}

func (a *API) putUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Password string   `json:"password"`
		Roles    []string `json:"roles"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	name := r.PathValue("name")
	if err := a.cfg.Auth.PutUser(r.Context(), name, in.Password, in.Roles); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.getUser(w, r)
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == principal(r).User {
		a.writeError(w, r, errorf(http.StatusConflict, "a user cannot delete themselves"))
		return
	}
	if err := a.cfg.Auth.DeleteUser(name); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type roleJSON struct {
	Name   string        `json:"name"`
	Scopes []flowg.Scope `json:"scopes"`
}

func roleOut(ro flowg.Role) roleJSON {
	if ro.Scopes == nil {
		ro.Scopes = []flowg.Scope{}
	}
	return roleJSON{ro.Name, ro.Scopes}
}

func (a *API) listRoles(w http.ResponseWriter, r *http.Request) {
	roles, err := a.cfg.Auth.Roles()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := []roleJSON{}
	for _, ro := range roles {
		out = append(out, roleOut(ro))
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": out})
}

func (a *API) getRole(w http.ResponseWriter, r *http.Request) {
	ro, err := a.cfg.Auth.Role(r.PathValue("name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, roleOut(ro))
}

func (a *API) putRole(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Scopes []flowg.Scope `json:"scopes"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.cfg.Auth.PutRole(r.PathValue("name"), in.Scopes); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.getRole(w, r)
}

func (a *API) deleteRole(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Auth.DeleteRole(r.PathValue("name")); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Tokens.

type tokenInfoJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Kind    string `json:"kind"`
	Created string `json:"created"`
	Expires string `json:"expires,omitempty"`
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	if _, ok := meshIdentity(r); ok && principal(r).TokenID == "" {
		a.writeError(w, r, errorf(http.StatusForbidden, "a mesh service has no tokens: its certificate is its credential"))
		return
	}
	var in struct {
		Name string `json:"name"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &in); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	tok, info, err := a.cfg.Auth.CreateToken(principal(r).User, in.Name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"token": tok, "id": info.ID})
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) {
	tokens, err := a.cfg.Auth.Tokens(principal(r).User)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := []tokenInfoJSON{}
	for _, t := range tokens {
		tj := tokenInfoJSON{ID: t.ID, Name: t.Name, Kind: string(t.Kind), Created: t.Created.Format(time.RFC3339)}
		if !t.Expires.IsZero() {
			tj.Expires = t.Expires.Format(time.RFC3339)
		}
		out = append(out, tj)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Auth.RevokeToken(principal(r).User, r.PathValue("id")); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
