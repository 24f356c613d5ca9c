package api

import (
	"sync"
	"time"

	"github.com/berthhq/berth"
)

// rateLimiter counts requests per key in a sliding window, in memory: the
// webhook endpoint keys it by app and by client address, the hosted git
// remotes by client address and by token. Its memory is
// bounded like auth.Limiter's: keys whose window ended are forgotten, and
// past maxKeys the oldest entries go. It is safe for concurrent use.
type rateLimiter struct {
	what   string // what it limits, for its error: "webhook", "git"
	window time.Duration

	mu   sync.Mutex
	hits map[string][]time.Time
}

// rateLimiterMaxKeys bounds the keys a rateLimiter remembers.
const rateLimiterMaxKeys = 50_000

func newRateLimiter(what string, window time.Duration) *rateLimiter {
	return &rateLimiter{what: what, window: window, hits: map[string][]time.Time{}}
}

// allow counts a request of key at now and returns a TooMany error, with
// how long to wait, when key has made limit requests in the window.
// Refused requests are not counted, so a client that waits gets in.
func (l *rateLimiter) allow(key string, limit int, now time.Time) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hits) >= rateLimiterMaxKeys {
		l.prune(now)
	}
	h := l.recent(l.hits[key], now)
	if len(h) >= limit {
		wait := h[len(h)-limit].Add(l.window).Sub(now)
		secs := int((wait + time.Second - 1) / time.Second)
		l.hits[key] = h
		return wait, berth.E("rate limit", berth.TooMany, "too many %s requests (%d a minute at most); try again in %d seconds", l.what, limit, max(secs, 1))
	}
	l.hits[key] = append(h, now)
	return 0, nil
}

// recent returns the hits of h still inside the window at now.
func (l *rateLimiter) recent(h []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(h) && !h[i].Add(l.window).After(now) {
		i++
	}
	return h[i:]
}

// prune forgets keys without recent hits and, when that is not enough,
// arbitrary keys until half the bound is free.
func (l *rateLimiter) prune(now time.Time) {
	for k, h := range l.hits {
		if len(l.recent(h, now)) == 0 {
			delete(l.hits, k)
		}
	}
	for k := range l.hits {
		if len(l.hits) < rateLimiterMaxKeys/2 {
			break
		}
		delete(l.hits, k)
	}
}
