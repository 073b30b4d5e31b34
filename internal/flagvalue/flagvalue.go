// Package flagvalue holds the flag types several packages register
// (sizes, repeatable lists, networks) and the host:port check they share.
// The standard flag package has none of them; each is a few lines.
package flagvalue

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
)

// ByteSize is a flag of bytes, written as 512MiB, 2GB or 1073741824.
type ByteSize int64

func (b *ByteSize) String() string {
	if b == nil || *b == 0 {
		return "0"
	}
	return humanize.IBytes(uint64(*b))
}

// Set parses a size.
func (b *ByteSize) Set(v string) error {
	n, err := humanize.ParseBytes(v)
	if err != nil || n > math.MaxInt64 {
		return fmt.Errorf("%q is not a size such as 512MiB or 2GB", v)
	}
	*b = ByteSize(n)
	return nil
}

// StringList is a repeatable flag whose values may also be
// comma-separated, so that one FLOWG_* variable can hold several.
type StringList []string

func (l *StringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// Set adds the comma-separated values of v.
func (l *StringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// PrefixList is a repeatable flag of IPs and CIDRs, also comma-separated.
type PrefixList []netip.Prefix

func (l *PrefixList) String() string {
	if l == nil {
		return ""
	}
	var s []string
	for _, p := range *l {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

// Set adds the comma-separated IPs and CIDRs of v.
func (l *PrefixList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if p, err := netip.ParsePrefix(part); err == nil {
			*l = append(*l, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return fmt.Errorf("%q is neither an IP nor a CIDR", part)
		}
		*l = append(*l, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return nil
}

// CheckHostPort checks a listen or server address: host:port where the
// host is empty, an IP or a host name and the port 0 to 65535.
func CheckHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not host:port (e.g. :5080 or 127.0.0.1:5080)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("host %q is neither an IP address nor a host name", host)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return false
		}
	}
	return true
}
