package node

import (
	"path/filepath"
	"testing"
)

func TestDefaultStateDir(t *testing.T) {
	cases := []struct{ auth, logs, cfg, want string }{
		{"./data/auth", "./data/logs", "./data/config", "data/state"},
		{"./data/node0/auth", "./data/node0/logs", "./data/node0/config", "data/node0/state"},
		{"/var/lib/flowg-auth", "/srv/logs", "/etc/flowg", "/var/lib/flowg-auth.state"},
	}
	for _, c := range cases {
		if got := defaultStateDir(c.auth, c.logs, c.cfg); got != filepath.FromSlash(c.want) {
			t.Errorf("defaultStateDir(%s, %s, %s) = %s, want %s", c.auth, c.logs, c.cfg, got, c.want)
		}
	}
}

// TestDefaultConfigIsValid: the defaults pass every package's Validate,
// so a start without flags is a valid start.
func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
