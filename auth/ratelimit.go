package auth

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/berthhq/berth"
)

// Default limits on failed sign-ins: per account (so that one password is
// not guessed from many addresses) and per client address (so that one
// address does not try many accounts).
const (
	LoginWindow        = 15 * time.Minute
	LoginFailsPerUser  = 5
	LoginFailsPerAddr  = 20
	limiterMaxEntries  = 100_000
	limiterPruneAtSize = 10_000
)

// Limiter counts failed sign-ins in memory, in a sliding window, per
// account and per client address. A success clears the account's count,
// never the address's: an attacker who owns one account cannot reset the
// count of the address they guess from. Its memory is bounded: windows
// that ended are forgotten, and past limiterMaxEntries keys the oldest
// are dropped. It is safe for concurrent use.
type Limiter struct {
	Window     time.Duration
	PerAccount int
	PerAddr    int

	mu       sync.Mutex
	accounts map[string][]time.Time
	addrs    map[netip.Addr][]time.Time
}

// NewLimiter returns a Limiter with the default limits.
func NewLimiter() *Limiter {
	return &Limiter{Window: LoginWindow, PerAccount: LoginFailsPerUser, PerAddr: LoginFailsPerAddr}
}

func accountKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Check returns a TooMany error, and how long to wait, when the account or
// the address has used up its failures in the current window.
func (l *Limiter) Check(account string, addr netip.Addr, now time.Time) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	wait := time.Duration(0)
	if f := l.recent(l.accounts[accountKey(account)], now); len(f) >= l.PerAccount {
		wait = max(wait, f[len(f)-l.PerAccount].Add(l.Window).Sub(now))
	}
	if f := l.recent(l.addrs[addr], now); len(f) >= l.PerAddr {
		wait = max(wait, f[len(f)-l.PerAddr].Add(l.Window).Sub(now))
	}
	if wait > 0 {
		secs := int(wait.Round(time.Second) / time.Second)
		return wait, berth.E("sign in", berth.TooMany, "too many failed sign-ins; try again in %d seconds", max(secs, 1))
	}
	return 0, nil
}

// Fail records a failed sign-in.
func (l *Limiter) Fail(account string, addr netip.Addr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.accounts == nil {
		l.accounts = map[string][]time.Time{}
		l.addrs = map[netip.Addr][]time.Time{}
	}
	if len(l.accounts)+len(l.addrs) >= limiterPruneAtSize {
		l.prune(now)
	}
	k := accountKey(account)
	l.accounts[k] = append(l.recent(l.accounts[k], now), now)
	l.addrs[addr] = append(l.recent(l.addrs[addr], now), now)
}

// Succeed clears the account's failures.
func (l *Limiter) Succeed(account string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.accounts, accountKey(account))
}

// recent returns the failures of f still inside the window at now.
func (l *Limiter) recent(f []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(f) && !f[i].Add(l.Window).After(now) {
		i++
	}
	return f[i:]
}

// prune forgets keys whose failures are all outside the window, and when
// that is not enough, arbitrary keys until the maps are small again.
func (l *Limiter) prune(now time.Time) {
	for k, f := range l.accounts {
		if len(l.recent(f, now)) == 0 {
			delete(l.accounts, k)
		}
	}
	for k, f := range l.addrs {
		if len(l.recent(f, now)) == 0 {
			delete(l.addrs, k)
		}
	}
	for k := range l.accounts {
		if len(l.accounts)+len(l.addrs) < limiterMaxEntries {
			break
		}
		delete(l.accounts, k)
	}
	for k := range l.addrs {
		if len(l.accounts)+len(l.addrs) < limiterMaxEntries {
			break
		}
		delete(l.addrs, k)
	}
}
