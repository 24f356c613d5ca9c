package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
)

func newMembersCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the team's members",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ms, err := c.Members(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				if ms == nil {
					ms = []berth.Member{}
				}
				return g.printJSON(ms)
			}
			t := newTable(g.sys.out, "NAME", "EMAIL", "ROLE", "PROJECTS", "ID")
			for _, m := range ms {
				projects := "all"
				if len(m.Projects) > 0 {
					projects = strings.Join(m.Projects, ",")
				}
				t.row(m.User.Name, m.User.Email, m.Role, projects, m.User.ID)
			}
			return t.flush()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "set-role USER_ID ROLE",
		Short: "Change a member's role (owner, admin, developer, viewer)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			m, err := c.SetMemberRole(cmd.Context(), args[0], berth.Role(args[1]))
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(m)
			}
			fmt.Fprintf(g.sys.out, "%s is now %s.\n", m.User.Name, m.Role)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "set-projects USER_ID [PROJECT...]",
		Short: "Narrow a developer or viewer to projects (none: every project)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			m, err := c.SetMemberProjects(cmd.Context(), args[0], args[1:])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(m)
			}
			fmt.Fprintf(g.sys.out, "%s now sees %d project(s) (0: all).\n", m.User.Name, len(m.Projects))
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "remove USER_ID",
		Short: "Remove a member from the team, with their tokens in it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.RemoveMember(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]string{"removed": args[0]})
			}
			fmt.Fprintf(g.sys.out, "Removed %s.\n", args[0])
			return nil
		},
	})
	return cmd
}
