package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

func newInviteCmd(g *globals) *cobra.Command {
	var role, expires string
	var projects []string
	cmd := &cobra.Command{
		Use:   "invite EMAIL",
		Short: "Invite someone to the team by e-mail (the secret is shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			inv, err := c.Invite(cmd.Context(), api.InvitationRequest{Email: args[0], Role: berth.Role(role), Projects: projects, ExpiresIn: expires})
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(inv)
			}
			fmt.Fprintf(g.sys.out, "Invited %s as %s until %s.\nSend them this secret (shown once): %s\nThey run: berth accept SECRET --server URL --name NAME (or, signed in: berth accept SECRET)\n",
				inv.Invitation.Email, inv.Invitation.Role, inv.Invitation.ExpiresAt.Local().Format(time.DateTime), inv.Secret)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "developer", "role: owner, admin, developer or viewer (not above yours)")
	cmd.Flags().StringSliceVar(&projects, "projects", nil, "narrow a developer or viewer to these projects")
	cmd.Flags().StringVar(&expires, "expires", "", "how long the invitation is valid (default 168h)")
	return cmd
}

func newInvitationsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "invitations",
		Short: "List the team's invitations",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			list, err := c.Invitations(cmd.Context())
			if err != nil {
				return err
			}
			if g.json() {
				if list == nil {
					list = []berth.Invitation{}
				}
				return g.printJSON(list)
			}
			now := time.Now()
			t := newTable(g.sys.out, "EMAIL", "ROLE", "STATE", "CREATED", "ID")
			for _, inv := range list {
				state := "pending"
				switch {
				case inv.AcceptedAt != nil:
					state = "accepted"
				case !inv.Pending(now):
					state = "expired"
				}
				t.row(inv.Email, inv.Role, state, age(inv.CreatedAt, now), inv.ID)
			}
			return t.flush()
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an invitation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.RevokeInvitation(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]string{"revoked": args[0]})
			}
			fmt.Fprintf(g.sys.out, "Revoked invitation %s.\n", args[0])
			return nil
		},
	})
	return cmd
}

func newAcceptCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "accept SECRET",
		Short: "Accept an invitation: signed in as the invited e-mail, or with --name as a new account",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			var c *api.Client
			if name != "" {
				// A new account: the secret is the only credential.
				server := g.server
				if server == "" {
					server = g.sys.getenv("BERTH_SERVER")
				}
				if server == "" {
					cfg, err := g.loadConfig()
					if err != nil {
						return err
					}
					server = cfg.Server
				}
				if server == "" {
					return errors.New("no server: pass --server URL (env BERTH_SERVER)")
				}
				if err := checkServerURL(server); err != nil {
					return err
				}
				c = api.NewClient(server, "", nil)
			} else {
				var err error
				if c, err = g.client(); err != nil {
					return err
				}
			}
			acc, err := c.AcceptInvitation(cmd.Context(), api.AcceptRequest{Secret: args[0], Name: name})
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(acc)
			}
			fmt.Fprintf(g.sys.out, "Joined team %s as %s.\nYour token for it (shown once): %s\nUse it: berth login SERVER --token TOKEN\n",
				acc.Team.Name, acc.Role, acc.Token.Secret)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "create a new account with this name (instead of using your token)")
	return cmd
}
