package proxy

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ServePlain serves the plain-HTTP listener's servers (the fast path and
// the net/http server it hands connections over to) on ln, as Serve
// does, until stop shuts them down.
func ServePlain(p *Proxy, ln net.Listener) (stop func()) {
	s := p.newPlainServer(ln, p, slog.NewLogLogger(p.log.Handler(), slog.LevelDebug))
	var wg sync.WaitGroup
	wg.Go(func() { s.serveFast() })
	wg.Go(func() { s.serveSlow() })
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s.shutdown(ctx)
			wg.Wait()
		})
	}
}
