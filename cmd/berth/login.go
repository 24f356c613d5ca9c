package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth/api"
)

func newLoginCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "login URL --token TOKEN",
		Short: "Save the server URL and token for the next commands",
		Long: "Check that TOKEN works on the server at URL, then save both in\n" +
			"$XDG_CONFIG_HOME/berth/config.json (or ~/.config/berth/config.json), readable only by you.",
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
			if token == "" {
				token = g.sys.getenv("BERTH_TOKEN")
			}
			if token == "" {
				return fmt.Errorf("pass the token with --token (the first one is in the server's data directory, file bootstrap-token)")
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
