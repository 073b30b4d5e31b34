package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// lockStateDir takes an exclusive lock on the state directory, so that two
// processes given the same directory fail at start instead of sharing an
// identity. The lock lasts as long as the returned file stays open.
func lockStateDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, errors.New("another flowg-server process is using it")
	}
	return f, nil
}

// nodeIdentity returns this node's ID: the one given, else the one kept in
// the state directory, else a new one, which is then kept.
func nodeIdentity(dir, given string, log *slog.Logger) (string, error) {
	path := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	kept := strings.TrimSpace(string(b))
	if kept != "" && !nodeIDRE.MatchString(kept) {
		return "", fmt.Errorf("%s holds %q, which is not a node ID", path, kept)
	}
	id := given
	switch {
	case given == "" && kept != "":
		return kept, nil
	case given == "":
		r := make([]byte, 5)
		rand.Read(r)
		id = "flowg-" + hex.EncodeToString(r)
		log.Info("generated a node ID", "node_id", id)
	case kept != "" && kept != given:
		log.Warn("the node ID differs from the one kept in the state directory; keeping the new one",
			"node_id", given, "previous", kept)
	case kept == given:
		return id, nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", err
	}
	return id, os.Rename(tmp, path)
}
