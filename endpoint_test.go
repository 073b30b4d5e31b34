package flowg

import "testing"

func TestParseEndpoint(t *testing.T) {
	for s, want := range map[string]string{
		"http://localhost:9113": "localhost:9113", "https://10.0.0.1:9113": "10.0.0.1:9113",
		"http://[::1]:9113/": "[::1]:9113", "http://node0": "node0:80", "https://node0": "node0:443",
	} {
		e, err := ParseEndpoint(s)
		if err != nil || e.HostPort() != want {
			t.Errorf("ParseEndpoint(%q) = %v (%s), %v; want host:port %s", s, e, e.HostPort(), err, want)
		}
	}
	for _, bad := range []string{"localhost:9113", "http://", "http://h:0", "http://h:70000", "http://h:1/path", "http://u:p@h:1", "::", "ftp://h:1", "http://h:1?q", "http://h:1#f"} {
		if _, err := ParseEndpoint(bad); err == nil {
			t.Errorf("ParseEndpoint(%q) accepted", bad)
		}
	}
}
