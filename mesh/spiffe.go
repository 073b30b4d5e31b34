package mesh

import (
	"errors"
	"net/url"
	"strings"

	flowg "github.com/flowg-server/flowg-server"
)

// parseSPIFFE reads a Consul service identity URI:
// spiffe://<trust domain>/ns/<namespace>/dc/<datacenter>/svc/<service>,
// optionally with /ap/<partition> first. It returns the trust domain too.
func parseSPIFFE(u *url.URL) (flowg.MeshIdentity, string, error) {
	if u == nil || u.Scheme != "spiffe" || u.Host == "" {
		return flowg.MeshIdentity{}, "", errors.New("not a SPIFFE URI")
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	id := flowg.MeshIdentity{Partition: "default"}
	if len(parts) == 8 && parts[0] == "ap" {
		id.Partition, parts = parts[1], parts[2:]
	}
	if len(parts) != 6 || parts[0] != "ns" || parts[2] != "dc" || parts[4] != "svc" || parts[1] == "" || parts[3] == "" || parts[5] == "" {
		return flowg.MeshIdentity{}, "", errors.New("not a Consul service identity (spiffe://<domain>/ns/<ns>/dc/<dc>/svc/<service>)")
	}
	id.Namespace, id.Datacenter, id.Service = parts[1], parts[3], parts[5]
	return id, strings.ToLower(u.Host), nil
}

func parseURL(s string) (*url.URL, error) { return url.Parse(s) }
