package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth/api"
)

func newProjectsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "projects",
		Short: "List the projects you see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.Projects(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				if ps == nil {
					ps = []api.Project{}
				}
				return g.printJSON(ps)
			}
			t := newTable(g.sys.out, "NAME", "APPS", "ID", "CREATED")
			for _, p := range ps {
				t.row(p.Name, p.Apps, p.ID, age(p.CreatedAt, time.Now()))
			}
			return t.flush()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "Create a project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.CreateProject(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(p)
			}
			fmt.Fprintf(g.sys.out, "Created project %s (%s).\n", p.Name, p.ID)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "delete PROJECT",
		Short: "Delete an empty project",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteProject(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]string{"deleted": args[0]})
			}
			fmt.Fprintf(g.sys.out, "Deleted project %s.\n", args[0])
			return nil
		},
	})
	return cmd
}
