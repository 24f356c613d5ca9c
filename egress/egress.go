// Package egress decides which outbound addresses berth may connect to for a
// user: git remotes, and later webhooks, notifications and S3 endpoints.
//
// A URL a user gives must not make the server reach its own loopback, the
// private network it sits in, link-local addresses (the cloud metadata
// service at 169.254.169.254 among them) or any other non-public range,
// unless the server's operator allows private egress
// (--allow-private-egress). A Policy checks a URL when it is written (Check)
// and again when it is used; for HTTP calls berth makes itself, Dialer and
// Client re-check the very address each connection goes to, so a name that
// resolves to a public address at check time and to a private one at
// connect time (DNS rebinding) is refused too.
//
// The package uses the standard library only, so any adapter may import it.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/berthhq/berth"
)

// Policy says which addresses outbound connections made for a user may
// reach. The zero value refuses every non-public address and resolves names
// with the system resolver.
type Policy struct {
	// AllowPrivate lets connections reach loopback, private, link-local and
	// other non-public addresses (single-machine setups, tests).
	AllowPrivate bool
	// Resolve looks a host name up; default net.DefaultResolver. Tests set
	// it to resolve names that no DNS server knows.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// blocked are the ranges no user-given URL may reach unless private egress
// is allowed, beyond what netip.Addr's own predicates cover (loopback,
// RFC 1918 and RFC 4193 private, link-local, multicast, unspecified).
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),      // carrier-grade NAT (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),       // TEST-NET-1
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),    // TEST-NET-2
	netip.MustParsePrefix("203.0.113.0/24"),     // TEST-NET-3
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, and broadcast
	netip.MustParsePrefix("100::/64"),           // discard-only
	netip.MustParsePrefix("2001:db8::/32"),      // documentation
	netip.MustParsePrefix("fec0::/10"),          // deprecated site-local
	netip.MustParsePrefix("64:ff9b:1::/48"),     // local-use NAT64
	netip.MustParsePrefix("2001::/32"),          // Teredo: tunnels to an IPv4 address
	netip.MustParsePrefix("::/96"),              // deprecated IPv4-compatible
	netip.MustParsePrefix("ff00::/8"),           // multicast (also IsMulticast)
	netip.MustParsePrefix("169.254.169.254/32"), // cloud metadata (also link-local)
}

// nat64 and sixToFour embed an IPv4 address, which is checked in turn.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Public reports whether ip is an address a user's URL may reach when
// private egress is not allowed. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d)
// and the IPv4 address inside NAT64 and 6to4 addresses are judged as IPv4.
func Public(ip netip.Addr) bool {
	if !ip.IsValid() || ip.Zone() != "" {
		return false
	}
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return Public(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			return Public(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range blocked {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// numericHostRE matches host names that C resolvers (inet_aton, which git
// and curl reach through getaddrinfo) read as IPv4 addresses although Go
// does not: "127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1".
var numericHostRE = regexp.MustCompile(`(?i)^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$`)

// Check parses rawURL (an http, https or ssh URL, or git's scp-like
// user@host:path) and resolves its host: it fails with an Invalid error
// when the host is, or resolves to, an address the policy refuses, and with
// an Unavailable error when the name does not resolve. It returns the
// addresses the host resolved to, all allowed.
func (p Policy) Check(ctx context.Context, rawURL string) ([]netip.Addr, error) {
	host, err := Host(rawURL)
	if err != nil {
		return nil, err
	}
	return p.CheckHost(ctx, host)
}

// CheckHost is Check for a bare host name or IP address.
func (p Policy) CheckHost(ctx context.Context, host string) ([]netip.Addr, error) {
	const op = "check outbound address"
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return nil, berth.E(op, berth.Invalid, "the URL has no host")
	}
	refuse := func(why string) error {
		return berth.E(op, berth.Invalid, "host %q %s; this server does not connect to loopback, private or link-local addresses for users (an operator may allow it with --allow-private-egress)", clip(host), why)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !p.AllowPrivate && !Public(ip) {
			return nil, refuse("is not a public address")
		}
		return []netip.Addr{ip.Unmap()}, nil
	}
	if numericHostRE.MatchString(host) {
		// Not an address Go reads, but one git's resolver would.
		return nil, berth.E(op, berth.Invalid, "host %q: write an IP address in its usual dotted form", clip(host))
	}
	lower := strings.ToLower(host)
	if !p.AllowPrivate && (lower == "localhost" || strings.HasSuffix(lower, ".localhost")) {
		return nil, refuse("is the local machine")
	}
	addrs, err := p.resolve(ctx, host)
	if err != nil {
		return nil, berth.Wrap(op, berth.Unavailable, fmt.Errorf("resolve %s: %w", clip(host), err))
	}
	if len(addrs) == 0 {
		return nil, berth.E(op, berth.Unavailable, "host %q has no address", clip(host))
	}
	for i, ip := range addrs {
		addrs[i] = ip.Unmap()
		if !p.AllowPrivate && !Public(ip) {
			return nil, refuse("resolves to a non-public address (" + ip.Unmap().String() + ")")
		}
	}
	return addrs, nil
}

func (p Policy) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if p.Resolve != nil {
		return p.Resolve(ctx, host)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			// The resolver's message names the server it asked; keep
			// only what is about the name.
			return nil, errors.New(dnsErr.Err)
		}
		return nil, err
	}
	return ips, nil
}

// scpRE matches git's scp-like syntax, user@host:path ("transport::address"
// is refused by Host).
var scpRE = regexp.MustCompile(`^(?:[^@/]+@)?(\[[^\]]+\]|[^:/]+):`)

// Host returns the host of an http(s) or ssh URL or of git's scp-like
// user@host:path, without brackets.
func Host(rawURL string) (string, error) {
	const op = "check outbound address"
	if strings.Contains(rawURL, "://") {
		u, err := url.Parse(rawURL)
		if err != nil {
			return "", berth.E(op, berth.Invalid, "not a valid URL")
		}
		switch u.Scheme {
		case "http", "https", "ssh":
		default:
			return "", berth.E(op, berth.Invalid, "scheme %q: use http, https or ssh", clip(u.Scheme))
		}
		if u.Hostname() == "" {
			return "", berth.E(op, berth.Invalid, "the URL has no host")
		}
		return u.Hostname(), nil
	}
	m := scpRE.FindStringSubmatch(rawURL)
	if m == nil || strings.HasPrefix(rawURL[len(m[0]):], ":") {
		return "", berth.E(op, berth.Invalid, "not a URL with a host")
	}
	return strings.Trim(m[1], "[]"), nil
}

// Control is a net.Dialer Control function that refuses a connection to an
// address the policy does not allow. It runs after name resolution, on the
// very address being connected to, so DNS rebinding cannot get around it.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	if p.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return berth.E("connect", berth.Invalid, "outbound address %q is not an IP address", clip(address))
	}
	if !Public(ap.Addr()) {
		return berth.E("connect", berth.Invalid, "outbound connection to %s refused: not a public address (an operator may allow it with --allow-private-egress)", ap.Addr().Unmap())
	}
	return nil
}

// Dialer returns a dialer that connects only where the policy allows.
func (p Policy) Dialer() *net.Dialer {
	return &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: p.Control}
}

// Client returns an HTTP client for requests berth makes for a user
// (webhooks, notifications): every connection, including those of
// redirects, goes only where the policy allows; environment proxies are not
// used (a proxy would connect on the client's behalf, unchecked); at most
// five redirects, to http or https only.
func (p Policy) Client(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           p.Dialer().DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to a %s URL refused", req.URL.Scheme)
			}
			return nil
		},
	}
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:97] + "..."
	}
	return s
}
