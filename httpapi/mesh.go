package httpapi

import (
	"context"
	"maps"
	"net/http"

	flowg "github.com/flowg-server/flowg-server"
)

type meshKey struct{}

// WithMeshIdentity serves h on a Consul Connect listener: identify gives
// the caller's verified mesh identity (from its client certificate), which
// then authenticates a request that has no bearer token (see
// AuthStore.AuthenticateMesh) and is stamped on the records it sends. Only
// the node, for its Connect listener, wraps a handler this way: no header
// or field of a request can claim an identity.
func WithMeshIdentity(h http.Handler, identify func(*http.Request) (flowg.MeshIdentity, bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := identify(r); ok {
			r = r.WithContext(context.WithValue(r.Context(), meshKey{}, id))
		}
		h.ServeHTTP(w, r)
	})
}

func meshIdentity(r *http.Request) (flowg.MeshIdentity, bool) {
	id, ok := r.Context().Value(meshKey{}).(flowg.MeshIdentity)
	return id, ok
}

// stampMesh refuses records that carry a field only the node sets, then
// sets the caller's mesh identity on each when it came over Connect.
func stampMesh(r *http.Request, recs []flowg.Record) error {
	for i, rec := range recs {
		for _, k := range flowg.MeshFieldNames {
			if _, ok := rec.Fields[k]; ok {
				return errorf(http.StatusBadRequest, "record %d sets %q, a field only the server sets (the sender's mesh identity)", i, k)
			}
		}
	}
	id, ok := meshIdentity(r)
	if !ok {
		return nil
	}
	stamp := id.Fields()
	for _, rec := range recs {
		maps.Copy(rec.Fields, stamp)
	}
	return nil
}

// Mesh grants.

type meshGrantJSON struct {
	Service string   `json:"service"`
	Roles   []string `json:"roles"`
}

func (a *API) listMeshGrants(w http.ResponseWriter, r *http.Request) {
	gs, err := a.cfg.Auth.MeshGrants()
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := []meshGrantJSON{}
	for _, g := range gs {
		out = append(out, meshGrantJSON{g.Service, g.Roles})
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": out})
}

func (a *API) putMeshGrant(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Roles []string `json:"roles"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		a.writeError(w, r, err)
		return
	}
	svc := r.PathValue("service")
	if err := a.cfg.Auth.PutMeshGrant(svc, in.Roles); err != nil {
		a.writeError(w, r, err)
		return
	}
	if in.Roles == nil {
		in.Roles = []string{}
	}
	writeJSON(w, http.StatusOK, meshGrantJSON{svc, in.Roles})
}

func (a *API) deleteMeshGrant(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Auth.DeleteMeshGrant(r.PathValue("service")); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
