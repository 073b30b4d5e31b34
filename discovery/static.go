package discovery

import (
	"context"
	"errors"

	flowg "github.com/flowg-server/flowg-server"
)

// Static is the peer given by the join flags.
type Static struct{ Peer flowg.Peer }

// NewStatic checks the config; a config without an endpoint is an error.
func NewStatic(cfg StaticConfig) (*Static, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("--cluster-join-endpoint is required")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Static{Peer: flowg.Peer{NodeID: cfg.NodeID, Endpoint: cfg.Endpoint}}, nil
}

// Name returns "static".
func (Static) Name() string { return "static" }

// Peers returns the configured peer.
func (s Static) Peers(context.Context) ([]flowg.Peer, error) { return []flowg.Peer{s.Peer}, nil }
