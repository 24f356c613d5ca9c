package engine

import (
	"context"

	"github.com/berthhq/berth"
)

// pruneLogs deletes the build logs of app's deployments older than its
// newest KeepLogs: without it the logs grow with every deployment forever.
func (e *Engine) pruneLogs(ctx context.Context, app *berth.App) {
	n, err := e.st.PruneLogs(ctx, app.TeamID, app.ID, e.cfg.KeepLogs)
	if err != nil {
		e.log.Warn("prune deployment logs", "app", app.ID, "err", err)
	} else if n > 0 {
		e.log.Debug("pruned deployment logs", "app", app.ID, "lines", n, "kept_deployments", e.cfg.KeepLogs)
	}
}

// collectImages removes the images of app that no kept release and no
// container uses. The images of the newest KeepReleases releases stay, so a
// rollback to any of them needs no rebuild; an image berth did not label
// (a prebuilt one, say) is never touched.
func (e *Engine) collectImages(ctx context.Context, app *berth.App, say func(format string, args ...any)) {
	rels, err := e.st.Releases(ctx, app.TeamID, app.ID, e.cfg.KeepReleases)
	if err != nil {
		e.log.Warn("collect images: list releases", "app", app.ID, "err", err)
		return
	}
	keep := map[string]bool{}
	for _, r := range rels {
		keep[r.Image] = true
	}
	cs, err := e.cfg.Runtime.Containers(ctx, e.appLabels(app))
	if err != nil {
		e.log.Warn("collect images: list containers", "app", app.ID, "err", err)
		return
	}
	for _, c := range cs {
		keep[c.Image] = true
	}
	imgs, err := e.cfg.Runtime.Images(ctx, e.appLabels(app))
	if err != nil {
		e.log.Warn("collect images: list images", "app", app.ID, "err", err)
		return
	}
	removed := 0
	for _, img := range imgs {
		if keep[img.ID] || keepsTag(keep, img.Tags) {
			continue
		}
		// By tag: Docker refuses to remove by ID an image with several tags
		// (a rebuild of unchanged source gives the same image a new tag);
		// removing its last tag removes it.
		refs := img.Tags
		if len(refs) == 0 {
			refs = []string{img.ID}
		}
		gone := true
		for _, ref := range refs {
			if err := e.cfg.Runtime.RemoveImage(ctx, ref); err != nil {
				if !berth.IsKind(err, berth.Conflict) {
					e.log.Warn("collect images: remove", "image", ref, "err", err)
				}
				gone = false
			}
		}
		if gone {
			removed++
		}
	}
	if removed > 0 {
		say("==> removed %d image(s) no kept release uses (keeping the last %d releases)", removed, e.cfg.KeepReleases)
	}
}

func keepsTag(keep map[string]bool, tags []string) bool {
	for _, t := range tags {
		if keep[t] {
			return true
		}
	}
	return false
}
