package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

func newTokensCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "List your API tokens (an admin: the team's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ts, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				if ts == nil {
					ts = []berth.Token{}
				}
				return g.printJSON(ts)
			}
			now := time.Now()
			t := newTable(g.sys.out, "NAME", "SCOPES", "EXPIRES", "LAST USED", "ID")
			for _, tok := range ts {
				exp, used := "never", "never"
				if tok.ExpiresAt != nil {
					exp = tok.ExpiresAt.Local().Format(time.DateTime)
				}
				if tok.LastUsedAt != nil {
					used = age(*tok.LastUsedAt, now)
				}
				scopes := make([]string, len(tok.Scopes))
				for i, s := range tok.Scopes {
					scopes[i] = string(s)
				}
				t.row(tok.Name, strings.Join(scopes, ","), exp, used, tok.ID)
			}
			return t.flush()
		},
	}
	var scopes []string
	var expires, team string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token (the secret is shown once); scopes never exceed yours",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			in := api.TokenRequest{Name: args[0], ExpiresIn: expires, Team: team}
			for _, s := range scopes {
				in.Scopes = append(in.Scopes, berth.Scope(s))
			}
			tc, err := c.CreateToken(cmd.Context(), in)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(tc)
			}
			fmt.Fprintf(g.sys.out, "Created token %s (%s). Its secret, shown once:\n%s\n", tc.Token.Name, tc.Token.ID, tc.Secret)
			return nil
		},
	}
	create.Flags().StringSliceVar(&scopes, "scopes", []string{"read"}, "scopes: read, read-secrets, deploy, write, admin")
	create.Flags().StringVar(&expires, "expires", "", "expiry: a duration (720h) or an RFC 3339 time; default: never")
	create.Flags().StringVar(&team, "team", "", "issue the token in another of your teams (name or ID)")
	cmd.AddCommand(create)
	cmd.AddCommand(&cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]string{"revoked": args[0]})
			}
			fmt.Fprintf(g.sys.out, "Revoked token %s.\n", args[0])
			return nil
		},
	})
	return cmd
}
