package httpapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	flowg "github.com/flowg-server/flowg-server"
	"github.com/flowg-server/flowg-server/store/storetest"
)

// TestLogin_ImpossibleNamesTakeNoThrottleKey: a login with a name no user
// can have (here 60 KiB) is answered 401 and leaves no per-user entry, so
// a guesser cannot fill the throttle with large keys.
func TestLogin_ImpossibleNamesTakeNoThrottleKey(t *testing.T) {
	st := storetest.Open(t)
	a, err := New(Config{Logs: st.Logs, Auth: st.Auth, Cluster: noNodes{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Public())
	defer srv.Close()
	for i := range 5 {
		name := strings.Repeat(string(rune('a'+i)), 60<<10)
		resp, err := http.Post(srv.URL+"/api/v1/auth/login", "application/json", strings.NewReader(`{"username":"`+name+`","password":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("login %d: %d, want 401", i, resp.StatusCode)
		}
	}
	a.loginByUser.mu.Lock()
	defer a.loginByUser.mu.Unlock()
	if n := len(a.loginByUser.keys); n != 0 {
		t.Fatalf("%d per-user keys after logins with impossible names", n)
	}
}

type noNodes struct{}

func (noNodes) Nodes() []flowg.Node { return nil }
