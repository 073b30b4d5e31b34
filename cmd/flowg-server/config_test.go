package main

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

func TestCheckEndpoint(t *testing.T) {
	for _, ok := range []string{"http://localhost:9113", "https://10.0.0.1:9113", "http://[::1]:9113/", "http://node0"} {
		if err := checkEndpoint(ok); err != nil {
			t.Errorf("checkEndpoint(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"localhost:9113", "http://", "http://h:0", "http://h:70000", "http://h:1/path", "http://u:p@h:1", "::"} {
		if err := checkEndpoint(bad); err == nil {
			t.Errorf("checkEndpoint(%q) accepted", bad)
		}
	}
}
