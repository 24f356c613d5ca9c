package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

func newDeploymentsCmd(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "deployments APP",
		Short: "List an app's deployments, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ds, err := c.Deployments(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			if g.json() {
				if ds == nil {
					ds = []berth.Deployment{}
				}
				return g.printJSON(ds)
			}
			now := time.Now()
			t := newTable(g.sys.out, "#", "ID", "STATUS", "COMMIT", "STAGES", "BY", "AGE")
			for i := range ds {
				d := &ds[i]
				t.row(d.Number, d.ID, d.Status, short(d.Commit), stages(d, now), d.CreatedBy, age(d.CreatedAt, now))
			}
			return t.flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many")
	return cmd
}

func newDeploymentCmd(g *globals) *cobra.Command {
	var withLog bool
	cmd := &cobra.Command{
		Use:   "deployment APP ID",
		Short: "Show a deployment (by ID or number) and its stage timings",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			d, err := c.Deployment(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(d)
			}
			now := time.Now()
			t := newTable(g.sys.out)
			t.row("Deployment:", fmt.Sprintf("#%d", d.Number))
			t.row("ID:", d.ID)
			t.row("Kind:", d.Kind)
			t.row("Status:", d.Status)
			if d.Error != "" {
				t.row("Error:", d.Error)
			}
			if d.Ref != "" {
				t.row("Ref:", d.Ref)
			}
			if d.Image != "" {
				t.row("Image:", d.Image)
			}
			if d.Commit != "" {
				t.row("Commit:", d.Commit)
			}
			if d.ReleaseID != "" {
				t.row("Release:", d.ReleaseID)
			}
			if d.TargetReleaseID != "" {
				t.row("Rolls back to:", d.TargetReleaseID)
			}
			t.row("By:", d.CreatedBy)
			t.row("Created:", fmt.Sprintf("%s (%s ago)", d.CreatedAt.Local().Format(time.DateTime), age(d.CreatedAt, now)))
			if d.FinishedAt != nil {
				t.row("Took:", seconds(d.FinishedAt.Sub(d.CreatedAt)))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(d.Stages) > 0 {
				fmt.Fprintln(g.sys.out)
				st := newTable(g.sys.out, "STAGE", "STARTED", "TOOK")
				for _, s := range d.Stages {
					took := seconds(s.Duration(now))
					if s.EndedAt == nil {
						took += " (running)"
					}
					st.row(s.Stage, s.StartedAt.Local().Format(time.TimeOnly), took)
				}
				if err := st.flush(); err != nil {
					return err
				}
			}
			if withLog {
				fmt.Fprintln(g.sys.out)
				return c.DeploymentLog(cmd.Context(), args[0], d.ID, g.sys.out)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&withLog, "log", false, "also print the deployment's log")
	return cmd
}

func newReleasesCmd(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "releases APP",
		Short: "List an app's releases, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			rels, err := c.Releases(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			if g.json() {
				if rels == nil {
					rels = []api.Release{}
				}
				return g.printJSON(rels)
			}
			now := time.Now()
			t := newTable(g.sys.out, "VERSION", "ID", "IMAGE", "COMMIT", "DEPLOYMENT", "AGE")
			for _, r := range rels {
				t.row(fmt.Sprintf("v%d", r.Number), r.ID, short(r.Image), short(r.Commit), r.DeploymentID, age(r.CreatedAt, now))
			}
			return t.flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "show at most this many")
	return cmd
}
