// Package serfnet runs Serf membership over the node's HTTP management port.
//
// Its memberlist transport carries packets as POST /cluster/gossip and
// streams as an HTTP/1.1 Upgrade of that path to a hijacked connection, so a
// node needs one port for health, metrics and gossip. With a cluster cookie,
// a key derived from it (HKDF-SHA256) encrypts gossip with memberlist's
// AES-GCM keyring, and a second derived key signs every request to
// /cluster/* (HMAC-SHA256 over method, path, sender, timestamp, nonce and
// body digest; a timestamp window and a nonce cache stop replays). The
// cookie never crosses the network.
//
// It exports an http.Handler for the management mux, and Join, Members and
// Leave for the rest of the node.
package serfnet
