package store

import (
	"errors"
	"fmt"

	flowg "github.com/flowg-server/flowg-server"
)

// prefixMesh keys the roles granted to mesh services. Like users and
// roles, grants are versioned meta entries, so they replicate.
const prefixMesh = "mesh/"

// MeshPrincipalPrefix starts the principal name of a mesh service, which
// no user name can start with (':' is not allowed in one).
const MeshPrincipalPrefix = "mesh:"

type meshJSON struct {
	Roles []string `json:"roles"`
}

// MeshGrants lists the roles granted to mesh services.
func (a *AuthStore) MeshGrants() ([]flowg.MeshGrant, error) {
	return scanAll(a, prefixMesh, func(name string, g meshJSON) flowg.MeshGrant { return flowg.MeshGrant{Service: name, Roles: g.Roles} })
}

// PutMeshGrant gives roles to a mesh service, replacing what it had.
func (a *AuthStore) PutMeshGrant(service string, roles []string) error {
	if err := flowg.ValidateNodeID(service); err != nil {
		return fmt.Errorf("%w: mesh service name %v", flowg.ErrInvalid, err)
	}
	roles, err := a.knownRoles(roles)
	if err != nil {
		return err
	}
	if roles == nil {
		roles = []string{}
	}
	return a.putJSON(prefixMesh+service, meshJSON{Roles: roles})
}

// DeleteMeshGrant takes every role from a mesh service.
func (a *AuthStore) DeleteMeshGrant(service string) error {
	var g meshJSON
	if err := a.getJSON(prefixMesh+service, &g); err != nil {
		return err
	}
	return a.delete(prefixMesh + service)
}

// AuthenticateMesh is the principal of a mesh service that called over
// Connect: the scopes of the roles granted to it. A service without a
// grant gets flowg.ErrBadToken, as a request without a valid token does.
func (a *AuthStore) AuthenticateMesh(id flowg.MeshIdentity) (flowg.Principal, error) {
	var g meshJSON
	if err := a.getJSON(prefixMesh+id.Service, &g); err != nil {
		if errors.Is(err, flowg.ErrNotFound) {
			return flowg.Principal{}, fmt.Errorf("%w: no role is granted to mesh service %q", flowg.ErrBadToken, id.Service)
		}
		return flowg.Principal{}, err
	}
	scopes, err := a.scopesOfRoles(g.Roles)
	if err != nil {
		return flowg.Principal{}, err
	}
	return flowg.Principal{User: MeshPrincipalPrefix + id.Service, Scopes: scopes}, nil
}
