package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status APP",
		Short: "Show what runs for an app: live release, deployment in progress, containers, domains",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(st)
			}
			now := time.Now()
			t := newTable(g.sys.out)
			if st.App != nil {
				t.row("App:", st.App.Name+" ("+sourceOf(st.App.Source)+")")
			}
			switch {
			case st.Live == nil:
				t.row("Live:", "nothing deployed yet")
			default:
				live := fmt.Sprintf("deployment #%d", st.Live.Number)
				if st.Release != nil {
					live += fmt.Sprintf(", release v%d", st.Release.Number)
					if st.Release.Commit != "" {
						live += ", commit " + short(st.Release.Commit)
					}
				}
				if st.Live.FinishedAt != nil {
					live += ", since " + age(*st.Live.FinishedAt, now) + " ago"
				}
				t.row("Live:", live)
			}
			if st.Active != nil {
				t.row("In progress:", fmt.Sprintf("deployment #%d, %s", st.Active.Number, st.Active.Status))
			}
			t.row("Domains:", strings.Join(st.Domains, ", "))
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(g.sys.out)
			ct := newTable(g.sys.out, "CONTAINER", "STATE", "HEALTH", "IP", "STARTED")
			for _, c := range st.Containers {
				name := c.Name
				if name == "" {
					name = short(c.ID)
				}
				ct.row(name, c.State, c.Health, c.IP, age(c.StartedAt, now))
			}
			return ct.flush()
		},
	}
}
