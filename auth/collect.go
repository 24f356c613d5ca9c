package auth

import (
	"context"
	"log/slog"
	"time"

	"github.com/berthhq/berth/store"
)

// CollectSessions deletes expired and idle sessions now and then every
// interval, until ctx ends. Expired sessions are already refused when
// presented; this keeps the table from growing with abandoned ones.
func CollectSessions(ctx context.Context, st *store.Store, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		now := time.Now()
		n, err := st.DeleteExpiredSessions(ctx, now, now.Add(-SessionIdle))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("collect sessions", "err", err)
		case n > 0:
			log.Info("collected sessions", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
