package flowg

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Endpoint is a node's management URL taken apart: scheme, host and port.
type Endpoint struct {
	// Scheme is "http" or "https".
	Scheme string
	// Host is an IP address or a host name, without brackets.
	Host string
	// Port is 1 to 65535; 0 when the URL gives none (the scheme's default).
	Port int
}

// String is the URL: scheme://host:port.
func (e Endpoint) String() string {
	if e.Port == 0 {
		if strings.Contains(e.Host, ":") {
			return e.Scheme + "://[" + e.Host + "]"
		}
		return e.Scheme + "://" + e.Host
	}
	return e.Scheme + "://" + net.JoinHostPort(e.Host, strconv.Itoa(e.Port))
}

// HostPort is host:port, with the scheme's default port (80 or 443) when
// the URL gives none.
func (e Endpoint) HostPort() string {
	port := e.Port
	if port == 0 {
		port = 80
		if e.Scheme == "https" {
			port = 443
		}
	}
	return net.JoinHostPort(e.Host, strconv.Itoa(port))
}

// ParseEndpoint parses a management endpoint URL such as
// http://10.0.0.1:9113: an http or https scheme, a host, an optional port,
// and nothing else (no path, query or user). It is the one parser of
// endpoints: flags, Consul meta, SRV answers and member tags all go
// through it.
func ParseEndpoint(s string) (Endpoint, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Endpoint{}, errors.New("scheme must be http or https (e.g. http://10.0.0.1:9113)")
	}
	if u.Hostname() == "" {
		return Endpoint{}, errors.New("URL has no host")
	}
	e := Endpoint{Scheme: u.Scheme, Host: u.Hostname()}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Endpoint{}, fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
		e.Port = n
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return Endpoint{}, errors.New("give scheme, host and port only")
	}
	return e, nil
}
