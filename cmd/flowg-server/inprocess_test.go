package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestInProcess_ThreeNodesReplicate runs three whole nodes (Run, as main
// does) in this process over real listeners: a record ingested on n0 and a
// user made on n1 are seen on n2, and the nodes stop in order.
func TestInProcess_ThreeNodesReplicate(t *testing.T) {
	t.Parallel() // waits on processes most of its time; isolated ports and directories
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var https, mgmts []string
	errs := make(chan error, 3)
	for i := range 3 {
		httpAddr, mgmtAddr := freeAddr(t), freeAddr(t)
		https, mgmts = append(https, httpAddr), append(mgmts, mgmtAddr)
		args := append(nodeArgs(dir, i, httpAddr, mgmtAddr), "--log-level", "warn")
		if i > 0 {
			args = append(args, "--cluster-join-node-id", "n0", "--cluster-join-endpoint", "http://"+mgmts[0])
		}
		go func() { errs <- Run(ctx, args, io.Discard, io.Discard) }()
	}
	defer func() {
		cancel()
		for range 3 {
			if err := <-errs; err != nil {
				t.Errorf("a node stopped with %v", err)
			}
		}
	}()
	do := func(i int, token, method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+https[i]+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	login := func(i int, user, pw string) string {
		code, b := do(i, "", "POST", "/api/v1/auth/login", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw))
		if code != 200 {
			return ""
		}
		_, tok, _ := strings.Cut(b, `"token":"`)
		tok, _, _ = strings.Cut(tok, `"`)
		return tok
	}
	var tok0 string
	eventually(t, 30*time.Second, "n0 serves", func() bool { tok0 = login(0, "root", "root"); return tok0 != "" })
	eventually(t, 30*time.Second, "three members", func() bool {
		resp, err := http.Get("http://" + mgmts[2] + "/cluster/nodes")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Count(string(b), `"status":"alive"`) == 3
	})
	if code, b := do(0, tok0, "POST", "/api/v1/streams/app/logs/struct", `{"records":[{"msg":"from n0"}]}`); code != 200 {
		t.Fatalf("ingest: %d %s", code, b)
	}
	tok1 := login(1, "root", "root")
	if code, b := do(1, tok1, "PUT", "/api/v1/users/bob", `{"password":"bob-password-12","roles":["admin"]}`); code/100 != 2 {
		t.Fatalf("user: %d %s", code, b)
	}
	eventually(t, 5*time.Second, "n2 has n0's record and n1's user", func() bool {
		tok2 := login(2, "bob", "bob-password-12")
		if tok2 == "" {
			return false
		}
		_, b := do(2, tok2, "GET", "/api/v1/streams/app/logs", "")
		return strings.Contains(b, "from n0")
	})
}
