package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	flowg "github.com/flowg-server/flowg-server"
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
	if kept != "" && flowg.ValidateNodeID(kept) != nil {
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

// absence is how long ago this node last ran, from the time kept in the
// state directory; 0 for a node that never ran.
func absence(dir string) time.Duration {
	b, err := os.ReadFile(filepath.Join(dir, "last-seen"))
	if err != nil {
		return 0
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
	if err != nil || time.Since(t) < 0 {
		return 0
	}
	return time.Since(t)
}

// keepLastSeen writes the time to the state directory now and every
// minute until ctx ends, so that the next start knows how long the node
// was down.
func keepLastSeen(ctx context.Context, dir string, log *slog.Logger) {
	path := filepath.Join(dir, "last-seen")
	for {
		tmp := path + ".tmp"
		err := os.WriteFile(tmp, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			log.Warn("cannot keep the last-seen time", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Minute):
		}
	}
}
