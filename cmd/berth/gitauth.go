package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

// maxSecretInput bounds what the credential commands read from stdin or a
// file.
const maxSecretInput = 64 << 10

// newAppsDeployKeyCmd is `berth apps deploy-key APP`: show the app's deploy
// key (making one when it has none), rotate or delete it.
func newAppsDeployKeyCmd(g *globals) *cobra.Command {
	var rotate, del bool
	cmd := &cobra.Command{
		Use:   "deploy-key APP [--rotate | --delete]",
		Short: "Show an app's ssh deploy key, creating it when there is none; rotate or delete it",
		Long: "Show the public half of the app's ed25519 deploy key (creating the key when the app has none), to add " +
			"to the repository's deploy keys with read access. berth fetches ssh:// and user@host:path URLs with it. " +
			"The private half never leaves the server. --rotate replaces the key (the old one stops working at once); " +
			"--delete removes it. The public key alone goes to stdout.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if rotate && del {
				return errors.New("use either --rotate or --delete")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, app := cmd.Context(), args[0]
			if del {
				if err := c.DeleteDeployKey(ctx, app); err != nil {
					return err
				}
				if g.json() {
					return g.printJSON(map[string]bool{"deleted": true})
				}
				fmt.Fprintf(g.sys.err, "Deleted the deploy key of %s; remove it from the repository's deploy keys too.\n", app)
				return nil
			}
			var k *berth.DeployKey
			made := false
			if rotate {
				k, err = c.CreateDeployKey(ctx, app, true)
				made = true
			} else if k, err = c.DeployKey(ctx, app); berth.IsKind(err, berth.NotFound) && strings.Contains(berth.ErrorMessage(err), "no deploy key") {
				k, err = c.CreateDeployKey(ctx, app, false)
				made = true
			}
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(k)
			}
			fmt.Fprintln(g.sys.out, k.PublicKey)
			switch {
			case rotate:
				fmt.Fprintf(g.sys.err, "Rotated the deploy key of %s (%s): replace the old one in the repository's deploy keys.\n", app, k.Fingerprint)
			case made:
				fmt.Fprintf(g.sys.err, "Created a deploy key for %s (%s): add it to the repository's deploy keys (read access).\n", app, k.Fingerprint)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the key with a new one")
	cmd.Flags().BoolVar(&del, "delete", false, "delete the key")
	return cmd
}

// newAppsGitCredentialsCmd is `berth apps git-credentials`: the access
// token for https URLs.
func newAppsGitCredentialsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "git-credentials",
		Short: "Manage an app's access token for https Git URLs (never shown back)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "show APP",
		Short: "Say whether the app has an access token, with its user name and when it was set",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			cr, err := c.GitCredentials(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(cr)
			}
			if !cr.Set {
				fmt.Fprintf(g.sys.out, "%s has no access token.\n", args[0])
				return nil
			}
			t := newTable(g.sys.out)
			t.row("Token:", "set (never shown)")
			t.row("User name:", orDefault(cr.Username, berth.DefaultGitUsername+" (default)"))
			if cr.UpdatedAt != nil {
				t.row("Set:", cr.UpdatedAt.Local().Format(time.DateTime))
			}
			return t.flush()
		},
	})
	var username string
	var fromStdin bool
	set := &cobra.Command{
		Use:   "set APP --token-stdin [--username NAME]",
		Short: "Set or replace the app's access token, read from stdin",
		Long: "Set or replace the access token berth sends to the app's https Git URL. The token is read from stdin " +
			"(--token-stdin), never from an argument, so that it stays out of the shell history and the process list. " +
			"--username is the user name sent with it: x-access-token by default (GitHub); oauth2 for GitLab, " +
			"x-token-auth for Bitbucket, or your user name.",
		Example: "  berth apps git-credentials set web --token-stdin < token.txt\n" +
			"  printenv GITLAB_TOKEN | berth apps git-credentials set web --username oauth2 --token-stdin",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !fromStdin {
				return errors.New("give the token on stdin with --token-stdin (never as an argument)")
			}
			token, err := readInput(cmd.InOrStdin(), "the token")
			if err != nil {
				return err
			}
			token = strings.TrimSpace(token)
			if token == "" {
				return errors.New("stdin held no token")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			cr, err := c.SetGitCredentials(cmd.Context(), args[0], api.GitCredentialsRequest{Username: username, Token: token})
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(cr)
			}
			fmt.Fprintf(g.sys.out, "Set the access token of %s (user name %s).\n", args[0], orDefault(cr.Username, berth.DefaultGitUsername))
			return nil
		},
	}
	set.Flags().StringVar(&username, "username", "", "user name sent with the token (default x-access-token)")
	set.Flags().BoolVar(&fromStdin, "token-stdin", false, "read the token from stdin")
	cmd.AddCommand(set)
	cmd.AddCommand(&cobra.Command{
		Use:     "delete APP",
		Aliases: []string{"rm"},
		Short:   "Delete the app's access token",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.DeleteGitCredentials(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]bool{"deleted": true})
			}
			fmt.Fprintf(g.sys.out, "Deleted the access token of %s.\n", args[0])
			return nil
		},
	})
	return cmd
}

// newAppsHostKeysCmd is `berth apps host-keys`: the ssh host keys an app
// trusts.
func newAppsHostKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "host-keys",
		Short: "Show, pin or reset the ssh host keys an app trusts",
		Long: "berth checks the host key of an app's ssh Git server: the key seen at the first successful fetch is " +
			"trusted from then on (trust on first use), and a server showing another key is refused. Pin keys " +
			"yourself with set (known_hosts lines, as ssh-keyscan prints them), or reset to trust on first use again.",
	}
	cmd.AddCommand(&cobra.Command{
		Use:     "list APP",
		Aliases: []string{"ls"},
		Short:   "List the ssh host keys the app trusts",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			keys, err := c.HostKeys(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.printHostKeys(keys)
		},
	})
	var file string
	set := &cobra.Command{
		Use:     "set APP --file FILE",
		Short:   "Replace the ssh host keys the app trusts with known_hosts lines (FILE, or - for stdin)",
		Example: "  ssh-keyscan -t ed25519 github.com | berth apps host-keys set web --file -",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errors.New("give the known_hosts lines with --file FILE (or --file - for stdin)")
			}
			var in io.Reader
			if file == "-" {
				in = cmd.InOrStdin()
			} else {
				f, err := os.Open(file)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			text, err := readInput(in, "the host keys")
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			keys, err := c.SetHostKeys(cmd.Context(), args[0], text)
			if err != nil {
				return err
			}
			return g.printHostKeys(keys)
		},
	}
	set.Flags().StringVar(&file, "file", "", "known_hosts lines to trust (- for stdin)")
	cmd.AddCommand(set)
	cmd.AddCommand(&cobra.Command{
		Use:   "reset APP",
		Short: "Forget the ssh host keys the app trusts: the next fetch trusts each host on first use again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.ResetHostKeys(cmd.Context(), args[0]); err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(map[string]bool{"reset": true})
			}
			fmt.Fprintf(g.sys.out, "Forgot the host keys of %s: the next fetch trusts the server's key on first use.\n", args[0])
			return nil
		},
	})
	return cmd
}

func (g *globals) printHostKeys(keys []berth.HostKey) error {
	if g.json() {
		if keys == nil {
			keys = []berth.HostKey{}
		}
		return g.printJSON(keys)
	}
	if len(keys) == 0 {
		fmt.Fprintln(g.sys.out, "No host keys: the next ssh fetch trusts the server's key on first use.")
		return nil
	}
	t := newTable(g.sys.out, "HOST", "TYPE", "FINGERPRINT", "SOURCE", "ADDED")
	now := time.Now()
	for _, k := range keys {
		typ, _, _ := strings.Cut(k.Key, " ")
		t.row(k.Host, typ, k.Fingerprint, string(k.Source), age(k.CreatedAt, now))
	}
	return t.flush()
}

// readInput reads at most maxSecretInput bytes of what.
func readInput(r io.Reader, what string) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSecretInput+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	if len(b) > maxSecretInput {
		return "", fmt.Errorf("%s: more than %d bytes", what, maxSecretInput)
	}
	return string(b), nil
}
