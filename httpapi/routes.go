package httpapi

import (
	"context"
	"net/http"
	"sort"
	"strings"

	flowg "github.com/flowg-server/flowg-server"
)

// access says who may call a route.
type access int

const (
	anyone        access = iota // no token
	authenticated               // any valid token
	scoped                      // a token whose user holds the route's scope
)

type route struct {
	method, path string
	access       access
	scope        flowg.Scope
	handler      http.HandlerFunc
}

// publicRoutes is the public API; the OpenAPI document lists the same routes.
func (a *API) publicRoutes() []route {
	return []route{
		{"POST", "/api/v1/auth/login", anyone, "", a.login},
		{"GET", "/api/v1/openapi.json", anyone, "", serveOpenAPI},
		{"GET", "/{$}", anyone, "", serveUI("index.html")},
		{"GET", "/ui/app.js", anyone, "", serveUI("app.js")},
		{"GET", "/ui/app.css", anyone, "", serveUI("app.css")},

		{"POST", "/api/v1/streams/{stream}/logs/struct", scoped, flowg.ScopeSendLogs, func(w http.ResponseWriter, r *http.Request) { a.ingest(w, r, false) }},
		{"POST", "/api/v1/streams/{stream}/logs/text", scoped, flowg.ScopeSendLogs, func(w http.ResponseWriter, r *http.Request) { a.ingest(w, r, true) }},
		{"POST", "/api/v1/streams/{stream}/otlp/v1/logs", scoped, flowg.ScopeSendLogs, a.otlpLogs},
		{"POST", "/v1/logs", scoped, flowg.ScopeSendLogs, a.otlpLogs},
		{"POST", "/api/v1/streams/{stream}/loki/api/v1/push", scoped, flowg.ScopeSendLogs, a.lokiPush},
		{"POST", "/loki/api/v1/push", scoped, flowg.ScopeSendLogs, a.lokiPush},
		{"GET", ElasticPrefix + "/{$}", anyone, "", a.elasticInfo},
		{"GET", ElasticPrefix + "/_cluster/health", anyone, "", a.elasticHealth},
		{"POST", ElasticPrefix + "/_bulk", scoped, flowg.ScopeSendLogs, a.elasticBulk},
		{"PUT", ElasticPrefix + "/_bulk", scoped, flowg.ScopeSendLogs, a.elasticBulk},
		{"POST", ElasticPrefix + "/{index}/_bulk", scoped, flowg.ScopeSendLogs, a.elasticBulk},
		{"PUT", ElasticPrefix + "/{index}/_bulk", scoped, flowg.ScopeSendLogs, a.elasticBulk},
		{"GET", "/api/v1/streams/{stream}/logs", scoped, flowg.ScopeReadStreams, a.query},
		{"GET", "/api/v1/streams/{stream}/logs/watch", scoped, flowg.ScopeReadStreams, a.watch},
		{"GET", "/api/v1/streams/{stream}/stats", scoped, flowg.ScopeReadStreams, a.stats},
		{"GET", "/api/v1/streams/{stream}/fields", scoped, flowg.ScopeReadStreams, a.fields},

		{"GET", "/api/v1/streams", scoped, flowg.ScopeReadStreams, a.listStreams},
		{"GET", "/api/v1/streams/{stream}", scoped, flowg.ScopeReadStreams, a.getStream},
		{"PUT", "/api/v1/streams/{stream}", scoped, flowg.ScopeWriteStreams, a.putStream},
		{"DELETE", "/api/v1/streams/{stream}", scoped, flowg.ScopeWriteStreams, a.deleteStream},

		{"GET", "/api/v1/users", scoped, flowg.ScopeReadACLs, a.listUsers},
		{"GET", "/api/v1/users/{name}", scoped, flowg.ScopeReadACLs, a.getUser},
		{"PUT", "/api/v1/users/{name}", scoped, flowg.ScopeWriteACLs, a.putUser},
		{"DELETE", "/api/v1/users/{name}", scoped, flowg.ScopeWriteACLs, a.deleteUser},

		{"GET", "/api/v1/roles", scoped, flowg.ScopeReadACLs, a.listRoles},
		{"GET", "/api/v1/roles/{name}", scoped, flowg.ScopeReadACLs, a.getRole},
		{"PUT", "/api/v1/roles/{name}", scoped, flowg.ScopeWriteACLs, a.putRole},
		{"DELETE", "/api/v1/roles/{name}", scoped, flowg.ScopeWriteACLs, a.deleteRole},

		{"GET", "/api/v1/mesh/services", scoped, flowg.ScopeReadACLs, a.listMeshGrants},
		{"PUT", "/api/v1/mesh/services/{service}", scoped, flowg.ScopeWriteACLs, a.putMeshGrant},
		{"DELETE", "/api/v1/mesh/services/{service}", scoped, flowg.ScopeWriteACLs, a.deleteMeshGrant},

		{"POST", "/api/v1/tokens", authenticated, "", a.createToken},
		{"GET", "/api/v1/tokens", authenticated, "", a.listTokens},
		{"DELETE", "/api/v1/tokens/{id}", authenticated, "", a.revokeToken},

		{"GET", "/api/v1/cluster/nodes", authenticated, "", a.clusterNodes},
	}
}

// Public returns the handler of the public API.
func (a *API) Public() http.Handler {
	return a.mount("public", a.publicRoutes())
}

// mount builds a mux of routes, with JSON answers for unknown paths (404)
// and known paths called with another method (405).
func (a *API) mount(server string, routes []route) *http.ServeMux {
	mux := http.NewServeMux()
	methods := map[string][]string{}
	for _, rt := range routes {
		h := a.guard(rt)
		if strings.HasPrefix(rt.path, ElasticPrefix+"/") {
			// Elasticsearch clients check the product header on every
			// answer, refusals included.
			inner := h
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elasticHeaders(w); inner.ServeHTTP(w, r) })
		}
		h = a.m.instrument(server, rt.path, h)
		mux.Handle(rt.method+" "+rt.path, h)
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	for path, ms := range methods {
		sort.Strings(ms)
		allow := strings.Join(ms, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			a.writeError(w, r, errorf(http.StatusMethodNotAllowed, "method %s is not allowed on %s; allowed: %s", r.Method, path, allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return mux
}

type principalKey struct{}

// guard checks the token and scope a route needs.
func (a *API) guard(rt route) http.Handler {
	if rt.access == anyone {
		return rt.handler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A bearer token wins; Basic auth carries a token as its password
		// (for shippers that only do Basic; the user name is not read);
		// without either, a caller over Connect acts with the roles granted
		// to its mesh service.
		var p flowg.Principal
		var err error
		if tok, ok := bearer(r); ok {
			p, err = a.cfg.Auth.Authenticate(tok)
		} else if _, pw, ok := r.BasicAuth(); ok {
			p, err = a.cfg.Auth.Authenticate(pw)
		} else if id, ok := meshIdentity(r); ok {
			p, err = a.cfg.Auth.AuthenticateMesh(id)
		} else {
			err = errorf(http.StatusUnauthorized, "missing Authorization: Bearer <token> header (or Basic with a token as the password)")
		}
		if err != nil {
			if statusOf(err) == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="flowg", Basic realm="flowg"`)
			}
			a.writeError(w, r, err)
			return
		}
		if rt.access == scoped && !p.Has(rt.scope) {
			a.writeError(w, r, errorf(http.StatusForbidden, "user %q lacks the %s scope", p.User, rt.scope))
			return
		}
		rt.handler(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func principal(r *http.Request) flowg.Principal {
	p, _ := r.Context().Value(principalKey{}).(flowg.Principal)
	return p
}
