package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berthhq/berth/api"
)

func newLoginCmd(g *globals) *cobra.Command {
	var email, code, recovery, team string
	cmd := &cobra.Command{
		Use:   "login URL (--token TOKEN | --email EMAIL)",
		Short: "Save the server URL and token for the next commands",
		Long: "Check that TOKEN works on the server at URL, then save both in\n" +
			"$XDG_CONFIG_HOME/berth/config.json (or ~/.config/berth/config.json), readable only by you.\n" +
			"With --email, sign in with your password instead (from BERTH_PASSWORD, or asked on the\n" +
			"terminal) and, when two-factor authentication is on, --code (or --recovery-code): the\n" +
			"server issues a new API token with your role's permissions, which is saved.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			server := strings.TrimRight(args[0], "/")
			if err := checkServerURL(server); err != nil {
				return err
			}
			token := g.token
			if token == "" && email == "" {
				token = g.sys.getenv("BERTH_TOKEN")
			}
			if token == "" && email != "" {
				pw, err := g.password("Password: ")
				if err != nil {
					return err
				}
				host, _ := os.Hostname()
				resp, err := api.NewClient(server, "", nil).Login(cmd.Context(), api.LoginRequest{
					Email: email, Password: pw, TOTPCode: code, RecoveryCode: recovery, Team: team,
					TokenName: "cli " + host + " " + time.Now().UTC().Format("2006-01-02"),
				})
				if err != nil {
					return err
				}
				token = resp.Token
			}
			if token == "" {
				return fmt.Errorf("pass the token with --token (the first one is in the server's data directory, file bootstrap-token), or sign in with --email")
			}
			me, err := api.NewClient(server, token, nil).Me(cmd.Context())
			if err != nil {
				return err
			}
			path, err := g.saveConfig(clientConfig{Server: server, Token: token})
			if err != nil {
				return err
			}
			if insecure(server) {
				fmt.Fprintf(g.sys.err, "warning: %s is plain http: the token crosses the network unencrypted\n", server)
			}
			if g.json() {
				return g.printJSON(me)
			}
			scopes := make([]string, len(me.Scopes))
			for i, s := range me.Scopes {
				scopes[i] = string(s)
			}
			fmt.Fprintf(g.sys.out, "Logged in to %s as %s (team %s, role %s, can: %s).\nSaved to %s.\n",
				server, me.User.Name, me.Team.Name, me.Role, strings.Join(scopes, ","), path)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&email, "email", "", "sign in with this e-mail address and your password (BERTH_PASSWORD or a prompt)")
	fs.StringVar(&code, "code", "", "current code of your authenticator app, when two-factor authentication is on")
	fs.StringVar(&recovery, "recovery-code", "", "a recovery code instead of --code (each works once)")
	fs.StringVar(&team, "team", "", "team to act in (default: the team you last signed in to or switched to, else your first by name)")
	return cmd
}

// password reads a password from BERTH_PASSWORD or, when stdin is a
// terminal, from a prompt that does not echo it.
func (g *globals) password(prompt string) (string, error) {
	if pw := g.sys.getenv("BERTH_PASSWORD"); pw != "" {
		return pw, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", fmt.Errorf("no password: set BERTH_PASSWORD or run on a terminal")
	}
	fmt.Fprint(g.sys.err, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(g.sys.err)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(b), nil
}

// insecure reports whether server is plain http to a host other than the
// local machine.
func insecure(server string) bool {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
