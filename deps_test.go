package flowg_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/flowg-server/flowg-server"

// features are the packages that must not import each other; only
// the node package connects them.
var features = []string{"store", "syslog", "httpapi", "serfnet", "discovery", "replica", "mesh"}

// TestDependencyRule enforces the dependency rule of docs/architecture.md
// with go list -deps.
func TestDependencyRule(t *testing.T) {
	for _, f := range append(features, "", "filter", "stats") {
		dir := "./" + f
		if f == "" {
			dir = "."
		}
		if _, err := os.Stat(dir); err != nil {
			continue // not written yet
		}
		out, err := exec.Command("go", "list", "-deps", dir+"/...").Output()
		if f == "" {
			out, err = exec.Command("go", "list", "-deps", ".").Output()
		}
		if err != nil {
			t.Fatalf("go list -deps %s: %v", dir, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, ok := strings.CutPrefix(dep, module+"/")
			if !ok {
				continue
			}
			top, _, _ := strings.Cut(rel, "/")
			if top == f || top == "filter" {
				continue
			}
			for _, other := range features {
				if top == other || f == "" || f == "filter" {
					t.Errorf("%s imports %s: feature packages (and the shared root and filter packages) must not import feature packages", dir, dep)
					break
				}
			}
		}
	}
}
