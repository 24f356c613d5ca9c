package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth/api"
)

func newPasswdCmd(g *globals) *cobra.Command {
	var email string
	cmd := &cobra.Command{
		Use:   "passwd [--email EMAIL]",
		Short: "Set or change your password (and sign-in e-mail)",
		Long: "Set or change your password. The current one comes from BERTH_PASSWORD or a prompt\n" +
			"(empty while you have none, as the bootstrap admin), the new one from BERTH_NEW_PASSWORD\n" +
			"or a prompt. Every other session of yours ends and ALL your API tokens are deleted,\n" +
			"including the one this command uses: sign in again with berth login URL --email EMAIL.\n" +
			"--email sets the address you sign in with (the bootstrap admin has none).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			current := g.sys.getenv("BERTH_PASSWORD")
			if current == "" && g.sys.getenv("BERTH_NEW_PASSWORD") == "" {
				if current, err = g.password("Current password (empty if none): "); err != nil {
					return err
				}
			}
			next := g.sys.getenv("BERTH_NEW_PASSWORD")
			if next == "" {
				if next, err = g.password("New password: "); err != nil {
					return err
				}
				again, err := g.password("New password again: ")
				if err != nil {
					return err
				}
				if again != next {
					return errors.New("the new passwords differ")
				}
			}
			resp, err := c.ChangePassword(cmd.Context(), api.PasswordRequest{CurrentPassword: current, NewPassword: next, Email: email})
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(resp)
			}
			fmt.Fprintf(g.sys.out, "%s (%d sessions, %d tokens).\n", resp.Message, resp.RevokedSessions, resp.RevokedTokens)
			return nil
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "set your sign-in e-mail address")
	return cmd
}

func new2FACmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "2fa",
		Short: "Turn two-factor authentication (TOTP) on or off",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "enable",
		Short: "Start enrolment: prints a secret and an otpauth:// URL for your authenticator app",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			pw, err := g.password("Password: ")
			if err != nil {
				return err
			}
			e, err := c.StartTOTP(cmd.Context(), pw)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(e)
			}
			fmt.Fprintf(g.sys.out, "Add this to your authenticator app:\n  secret: %s\n  url:    %s\nThen run: berth 2fa confirm CODE\n", e.Secret, e.OTPAuthURL)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "confirm CODE",
		Short: "Turn TOTP on with the app's current code; prints recovery codes, shown once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			codes, err := c.ConfirmTOTP(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(api.RecoveryCodes{RecoveryCodes: codes})
			}
			fmt.Fprintln(g.sys.out, "Two-factor authentication is on. Keep these recovery codes somewhere safe; each works once:")
			for _, code := range codes {
				fmt.Fprintln(g.sys.out, "  "+code)
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "disable",
		Short: "Turn TOTP off (asks for your password)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			pw, err := g.password("Password: ")
			if err != nil {
				return err
			}
			if err := c.DisableTOTP(cmd.Context(), pw); err != nil {
				return err
			}
			fmt.Fprintln(g.sys.out, "Two-factor authentication is off.")
			return nil
		},
	})
	return cmd
}
