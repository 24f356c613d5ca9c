package engine

import (
	"fmt"

	"github.com/berthhq/berth"
)

// checkRelease validates, where it is used, every user value of a release
// that reaches Docker or the proxy: the API checked them when they were
// written, but a store edited by hand, an older release or a bug above the
// engine must not turn into a container option or a route.
func checkRelease(app *berth.App, rel *berth.Release) error {
	const op = "check release"
	bad := func(err error) error { return berth.E(op, berth.Invalid, "release v%d: %v", rel.Number, err) }
	cfg := rel.Config
	if err := berth.ValidName(app.Name); err != nil {
		return bad(err)
	}
	if err := berth.ValidImageRef(rel.Image); err != nil {
		return bad(err)
	}
	// The settings a release shares with its app, checked by the app's rules.
	shape := berth.App{Name: app.Name, Source: berth.Source{Kind: berth.SourceUpload}, Port: cfg.Port,
		Replicas: cfg.Replicas, Resources: cfg.Resources, Health: cfg.Health.WithDefaults(), Volumes: cfg.Volumes}
	if err := shape.Validate(); err != nil {
		return bad(fmt.Errorf("%s", berth.ErrorMessage(err)))
	}
	for k, v := range cfg.Env {
		if err := berth.ValidEnv(k, v); err != nil {
			return bad(err)
		}
	}
	for _, h := range cfg.Domains {
		if err := berth.ValidHost(h); err != nil {
			return bad(err)
		}
	}
	return nil
}

// checkApp validates an app's settings again before a deployment uses them.
func checkApp(app *berth.App) error {
	if err := app.Validate(); err != nil {
		return berth.E("check app", berth.Invalid, "app %s: %s", app.ID, berth.ErrorMessage(err))
	}
	return nil
}
