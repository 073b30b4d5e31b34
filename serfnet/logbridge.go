package serfnet

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// logBridge is an io.Writer for the *log.Logger that serf and memberlist
// take: it reads their "[LEVEL] " prefixes and writes to slog at that level.
type logBridge struct{ l *slog.Logger }

func newStdLogger(l *slog.Logger) *log.Logger { return log.New(logBridge{l}, "", 0) }

func (b logBridge) Write(p []byte) (int, error) {
	msg := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG] ": slog.LevelDebug, "[TRACE] ": slog.LevelDebug,
		"[INFO] ": slog.LevelInfo, "[WARN] ": slog.LevelWarn, "[ERR] ": slog.LevelError, "[ERROR] ": slog.LevelError} {
		if rest, ok := bytes.CutPrefix(msg, []byte(prefix)); ok {
			msg, level = rest, l
			break
		}
	}
	b.l.Log(context.Background(), level, string(msg))
	return len(p), nil
}
