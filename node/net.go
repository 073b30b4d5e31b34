package node

import (
	"fmt"
	"net"
)

// advertiseAddr is the address other hosts reach a listener at: override
// when given, else the bound address with an unspecified host (0.0.0.0, ::)
// replaced by this host's first non-loopback address.
func advertiseAddr(override string, bound net.Addr) string {
	_, port, _ := net.SplitHostPort(bound.String())
	if override != "" {
		if _, _, err := net.SplitHostPort(override); err == nil {
			return override
		}
		return net.JoinHostPort(override, port)
	}
	return advertiseHostPort(bound.String())
}

// advertiseHostPort replaces an empty or unspecified host in addr with this
// host's first non-loopback address.
func advertiseHostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return addr
	}
	return net.JoinHostPort(firstHostIP(), port)
}

func firstHostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

// resolveAdvertise turns host:port into the IP:port gossip advertises.
func resolveAdvertise(hostPort string) (string, error) {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsUnspecified() {
			return "", fmt.Errorf("%s is not an address other nodes can reach", host)
		}
		return hostPort, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return "", fmt.Errorf("cannot resolve %q: %v", host, err)
	}
	return net.JoinHostPort(ips[0].String(), port), nil
}
