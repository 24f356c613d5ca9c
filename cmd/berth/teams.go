package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
)

func newTeamsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "teams",
		Short: "List your teams (tokens are per team: the current one is marked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			teams, err := c.Teams(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				if teams == nil {
					teams = []berth.Membership{}
				}
				return g.printJSON(teams)
			}
			cur, err := c.Team(cmd.Context())
			if err != nil {
				return err
			}
			t := newTable(g.sys.out, "", "TEAM", "ROLE", "ID")
			for _, m := range teams {
				mark := ""
				if m.Team.ID == cur.Team.ID {
					mark = "*"
				}
				t.row(mark, m.Team.Name, m.Role, m.Team.ID)
			}
			return t.flush()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "Create a team you own; prints a token for it (shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			tc, err := c.CreateTeam(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(tc)
			}
			fmt.Fprintf(g.sys.out, "Created team %s (%s); you are its owner.\nToken for it (shown once): %s\nUse it: berth login SERVER --token TOKEN\n",
				tc.Team.Name, tc.Team.ID, tc.Token.Secret)
			return nil
		},
	})
	return cmd
}
