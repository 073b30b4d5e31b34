package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPI_MatchesRoutes checks the served document against the real
// mux: every documented operation is routed (not 404 or 405), every routed
// operation is documented, and the documented scope is the one enforced.
func TestOpenAPI_MatchesRoutes(t *testing.T) {
	n := newNode(t)
	resp, err := http.Get(n.public.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Scope    string           `json:"x-flowg-scope"`
			Security []map[string]any `json:"security"`
		}
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %v", err)
	}
	// A user with no scope at all: scoped routes answer 403, the others not.
	n.call("PUT", "/api/v1/users/nobody", "", `{"password":"nobody-password","roles":[]}`, 200, nil)
	nobody := n.login("nobody", "nobody-password")
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			method = strings.ToUpper(method)
			documented = append(documented, method+" "+path)
			concrete := strings.NewReplacer("{stream}", "app", "{name}", "someone", "{id}", "x", "{service}", "app", "{index}", "app").Replace(path)
			code, body := n.doAs(nobody, method, concrete, "application/json", "{}")
			if code == 404 && strings.Contains(body, "no such endpoint") || code == 405 {
				t.Errorf("%s %s is documented but not routed: %d %s", method, path, code, body)
			}
			wantForbidden := op.Scope != ""
			if gotForbidden := code == 403 && strings.Contains(body, "lacks the "+op.Scope); gotForbidden != wantForbidden {
				t.Errorf("%s %s: documented scope %q, answered %d %s", method, path, op.Scope, code, body)
			}
			public := op.Security != nil && len(op.Security) == 0
			if anon, _ := n.doAs("", method, concrete, "application/json", "{}"); (anon == 401) == public {
				t.Errorf("%s %s: documented public=%v, answered %d without a token", method, path, public, anon)
			}
		}
	}
	sort.Strings(documented)
	routed := httpapiRoutes(n)
	sort.Strings(routed)
	if strings.Join(documented, "\n") != strings.Join(routed, "\n") {
		t.Errorf("documented operations:\n%s\nrouted operations:\n%s", strings.Join(documented, "\n"), strings.Join(routed, "\n"))
	}
}

// httpapiRoutes lists the routed operations by asking each documented and
// undocumented method of every known path.
func httpapiRoutes(n *node) []string {
	paths := []string{
		"/api/v1/auth/login", "/api/v1/openapi.json", "/api/v1/streams", "/api/v1/streams/{stream}",
		"/api/v1/streams/{stream}/logs", "/api/v1/streams/{stream}/logs/struct", "/api/v1/streams/{stream}/logs/text",
		"/api/v1/streams/{stream}/logs/watch", "/api/v1/streams/{stream}/stats", "/api/v1/streams/{stream}/fields", "/api/v1/users", "/api/v1/users/{name}", "/api/v1/roles",
		"/api/v1/roles/{name}", "/api/v1/tokens", "/api/v1/tokens/{id}", "/api/v1/cluster/nodes",
		"/api/v1/mesh/services", "/api/v1/mesh/services/{service}",
		"/v1/logs", "/api/v1/streams/{stream}/otlp/v1/logs", "/loki/api/v1/push", "/api/v1/streams/{stream}/loki/api/v1/push",
		"/elasticsearch/", "/elasticsearch/_cluster/health", "/elasticsearch/_bulk", "/elasticsearch/{index}/_bulk",
	}
	var out []string
	for _, p := range paths {
		concrete := strings.NewReplacer("{stream}", "zz", "{name}", "zz", "{id}", "zz", "{service}", "zz", "{index}", "zz").Replace(p)
		code, _ := n.doAs("", "OPTIONS", concrete, "", "")
		if code != 405 {
			continue
		}
		for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
			if code, _ := n.doAs("", m, concrete, "", ""); code != 405 && code != 404 || code == 404 && m != "PATCH" && isRouted404(n, m, concrete) {
				out = append(out, m+" "+p)
			}
		}
	}
	return out
}

// isRouted404 tells a routed handler's 404 (unknown stream, user, ...) from
// the mux's "no such endpoint".
func isRouted404(n *node, method, path string) bool {
	_, body := n.do(method, path, "", "")
	return !strings.Contains(body, "no such endpoint")
}
