package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

func newDeployCmd(g *globals) *cobra.Command {
	var ref, image, dir string
	var cancel, detach bool
	cmd := &cobra.Command{
		Use:   "deploy APP [--ref REF] [--image IMAGE] [--from-dir DIR] [--cancel] [--detach]",
		Short: "Deploy an app and follow the deployment's log until it ends",
		Long: "Deploy APP: from its Git repository (at --ref, default the app's branch), its image\n" +
			"(or --image), or a directory uploaded with --from-dir (.git is skipped; symbolic links\n" +
			"are kept only when they point inside DIR). The command follows the log and exits 0\n" +
			"when the deployment is live. --detach returns once it is queued; --cancel cancels\n" +
			"the deployment in progress.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, app := cmd.Context(), args[0]
			if cancel {
				if ref != "" || image != "" || dir != "" {
					return errors.New("--cancel takes no --ref, --image or --from-dir")
				}
				return g.cancelActive(ctx, c, app)
			}
			var d *berth.Deployment
			if dir != "" {
				if ref != "" || image != "" {
					return errors.New("--from-dir takes no --ref or --image")
				}
				d, err = g.upload(ctx, c, app, dir)
			} else {
				d, err = c.Deploy(ctx, app, api.DeployRequest{Ref: ref, Image: image})
			}
			if err != nil {
				return err
			}
			return g.watch(ctx, c, app, d, detach)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "ref", "", "Git branch, tag or commit to deploy")
	f.StringVar(&image, "image", "", "image to deploy (image apps)")
	f.StringVar(&dir, "from-dir", "", "upload this directory as the build context (upload apps)")
	f.BoolVar(&cancel, "cancel", false, "cancel the deployment in progress")
	f.BoolVar(&detach, "detach", false, "do not follow the deployment")
	return cmd
}

// upload deploys dir, streamed as a gzipped tar while it is read.
func (g *globals) upload(ctx context.Context, c *api.Client, app, dir string) (*berth.Deployment, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := writeArchive(dir, pw, g.sys.err)
		pw.CloseWithError(err)
		done <- err
	}()
	d, err := c.DeployUpload(ctx, app, pr, true)
	pr.CloseWithError(errUploadEnded)
	// When the archive failed first, its error is the cause; when the
	// server answered first, the server's answer is — the archive then
	// failed on a pipe closed by us or, earlier, by the HTTP transport
	// (io.ErrClosedPipe).
	archErr := <-done
	if archErr != nil && err != nil && !errors.Is(archErr, errUploadEnded) && !errors.Is(archErr, io.ErrClosedPipe) {
		return nil, archErr
	}
	return d, err
}

var errUploadEnded = errors.New("upload ended")

// cancelActive cancels the deployment of app that is in progress.
func (g *globals) cancelActive(ctx context.Context, c *api.Client, app string) error {
	st, err := c.Status(ctx, app)
	if err != nil {
		return err
	}
	if st.Active == nil {
		return fmt.Errorf("app %s has no deployment in progress", app)
	}
	d, err := c.CancelDeployment(ctx, app, st.Active.ID)
	if err != nil {
		return err
	}
	if g.json() {
		return g.printJSON(d)
	}
	fmt.Fprintf(g.sys.out, "Cancelling deployment #%d of %s (%s).\n", d.Number, app, d.Status)
	return nil
}

// watch follows deployment d of app until it ends (unless detach) and
// reports how it ended: an error unless it went live.
func (g *globals) watch(ctx context.Context, c *api.Client, app string, d *berth.Deployment, detach bool) error {
	if detach {
		if g.json() {
			return g.printJSON(d)
		}
		fmt.Fprintf(g.sys.out, "Deployment #%d of %s is %s (id %s).\n", d.Number, app, d.Status, d.ID)
		return nil
	}
	logs := g.sys.out
	if g.json() {
		logs = g.sys.err // keep stdout for the JSON document
	}
	fmt.Fprintf(logs, "==> deployment #%d of %s (%s)\n", d.Number, app, d.ID)
	final, err := c.FollowDeployment(ctx, app, d.ID,
		func(l berth.LogLine) { fmt.Fprintln(logs, l.Text) },
		func(d *berth.Deployment) { fmt.Fprintf(logs, "==> %s\n", d.Status) })
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped following; deployment #%d continues on the server (berth deployment %s %d)", d.Number, app, d.Number)
		}
		return err
	}
	if g.json() {
		if err := g.printJSON(final); err != nil {
			return err
		}
	}
	if final.Status != berth.StatusLive {
		reason := final.Error
		if reason == "" {
			reason = "deployment " + string(final.Status)
		}
		return fmt.Errorf("deploy failed: %s", reason)
	}
	if !g.json() {
		took := ""
		if final.FinishedAt != nil {
			took = " in " + seconds(final.FinishedAt.Sub(final.CreatedAt))
		}
		fmt.Fprintf(g.sys.out, "Deployment #%d of %s is live%s.\n", final.Number, app, took)
	}
	return nil
}

func newRollbackCmd(g *globals) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "rollback APP [RELEASE]",
		Short: "Run an earlier release again, without a build (default: the one before the live one)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			release := ""
			if len(args) == 2 {
				release = args[1]
			}
			d, err := c.Rollback(cmd.Context(), args[0], release)
			if err != nil {
				return err
			}
			return g.watch(cmd.Context(), c, args[0], d, detach)
		},
	}
	cmd.Flags().BoolVar(&detach, "detach", false, "do not follow the deployment")
	return cmd
}

// stageNames are the short names of the stages in tables.
var stageNames = map[berth.Status]string{
	berth.StatusQueued: "queue", berth.StatusFetching: "fetch", berth.StatusBuilding: "build",
	berth.StatusStarting: "start", berth.StatusVerifying: "verify", berth.StatusSwitching: "switch",
}

// stages summarizes stage timings: "fetch 1.2s build 3.4s …".
func stages(d *berth.Deployment, now time.Time) string {
	var s string
	for _, st := range d.Stages {
		name := stageNames[st.Stage]
		if name == "" {
			name = string(st.Stage)
		}
		if s != "" {
			s += " "
		}
		s += name + " " + seconds(st.Duration(now))
	}
	return s
}
