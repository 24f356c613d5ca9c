package auth

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// AddrPolicy finds the client address of a request: the socket's peer,
// unless that peer is a trusted proxy, in which case the right-most address
// of X-Forwarded-For that is not itself a trusted proxy. Rate limits and the
// audit log use it, so a client cannot choose its own address by sending a
// header.
type AddrPolicy struct {
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
}

// Client returns the client address of r; the zero Addr when the socket's
// address cannot be parsed (never the case for a TCP connection).
func (a AddrPolicy) Client(r *http.Request) netip.Addr {
	peer := socketAddr(r)
	if !a.trusted(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		all = append(all, strings.Split(h, ",")...)
	}
	for i := len(all) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(all[i]))
		if err != nil {
			return peer // a malformed chain: believe only the socket
		}
		ip = ip.Unmap()
		if !a.trusted(ip) {
			return ip
		}
	}
	return peer
}

func (a AddrPolicy) trusted(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range a.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func socketAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

// ParseTrustedProxies parses a comma-separated list of addresses and CIDR
// prefixes ("10.0.0.0/8, 192.168.1.10").
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	return out, nil
}
