package discovery

import (
	"context"

	flowg "github.com/flowg-server/flowg-server"
)

// Static is the peer given by the join flags.
type Static struct{ Peer flowg.Peer }

// Name returns "static".
func (Static) Name() string { return "static" }

// Peers returns the configured peer.
func (s Static) Peers(context.Context) ([]flowg.Peer, error) { return []flowg.Peer{s.Peer}, nil }
