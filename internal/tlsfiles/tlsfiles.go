// Package tlsfiles is the TLS setting of one listener as flags give it:
// on or off, a certificate and key, and optionally the CAs that client
// certificates must chain to.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
)

// Server is one listener's TLS files.
type Server struct {
	On                  bool
	Cert, Key, ClientCA string
	name                string // the flag prefix, for messages
}

// RegisterFlags registers --<name>-tls, --<name>-tls-cert, --<name>-tls-key
// and, when clientCA, --<name>-tls-client-ca; what names the listener in
// the help ("the public API").
func (s *Server) RegisterFlags(fs *flag.FlagSet, name, what string, clientCA bool) {
	s.name = name
	fs.BoolVar(&s.On, name+"-tls", s.On, "serve "+what+" over TLS")
	fs.StringVar(&s.Cert, name+"-tls-cert", s.Cert, "PEM certificate of "+what)
	fs.StringVar(&s.Key, name+"-tls-key", s.Key, "PEM key of "+what)
	if clientCA {
		fs.StringVar(&s.ClientCA, name+"-tls-client-ca", s.ClientCA, "PEM CA bundle; when set, clients of "+what+" must present a certificate it signed")
	}
}

// Validate checks that the files are given together; Load reads them.
func (s *Server) Validate() error {
	n := s.name
	if !s.On {
		if s.Cert != "" || s.Key != "" || s.ClientCA != "" {
			return fmt.Errorf("--%s-tls-* flags are set but --%s-tls is not", n, n)
		}
		return nil
	}
	if s.Cert == "" || s.Key == "" {
		return fmt.Errorf("--%s-tls needs --%s-tls-cert and --%s-tls-key", n, n, n)
	}
	return nil
}

// Load builds the listener's TLS config, or nil when TLS is off.
func (s *Server) Load() (*tls.Config, error) {
	if err := s.Validate(); err != nil || !s.On {
		return nil, err
	}
	n := s.name
	cert, err := tls.LoadX509KeyPair(s.Cert, s.Key)
	if err != nil {
		return nil, fmt.Errorf("--%s-tls-cert/--%s-tls-key: %w", n, n, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if s.ClientCA != "" {
		pool, err := LoadPool(s.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("--%s-tls-client-ca: %w", n, err)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// LoadPool reads a PEM CA bundle.
func LoadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%q: no PEM certificate in it", file)
	}
	return pool, nil
}
