package flowg

// MeshIdentity is the service-mesh identity of a caller, from the SPIFFE
// URI of the client certificate it presented over Consul Connect.
type MeshIdentity struct {
	Service, Namespace, Datacenter, Partition string
}

// Fields the node sets on a record that arrived over a Connect connection.
// No client can set them: ingest refuses a record that carries one.
const (
	FieldMeshService    = "mesh_service"
	FieldMeshNamespace  = "mesh_namespace"
	FieldMeshDatacenter = "mesh_datacenter"
)

// MeshFields are the fields of a mesh identity, by name.
func (m MeshIdentity) Fields() map[string]string {
	return map[string]string{FieldMeshService: m.Service, FieldMeshNamespace: m.Namespace, FieldMeshDatacenter: m.Datacenter}
}

// MeshFieldNames are the fields only the node sets.
var MeshFieldNames = [...]string{FieldMeshService, FieldMeshNamespace, FieldMeshDatacenter}
