package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

func newWebhooksCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "webhooks",
		Aliases: []string{"webhook"},
		Short:   "Push to deploy: an app's webhook URL, secret, branch filter, watch paths and deliveries",
		Long: "A push to the app's repository deploys the pushed commit when the provider (GitHub, GitLab, " +
			"Gitea/Forgejo, Bitbucket) posts it to the app's webhook URL, signed with the app's secret. " +
			"An app without a secret accepts no webhook.",
	}
	cmd.AddCommand(newWebhooksShowCmd(g), newWebhooksSetCmd(g), newWebhooksSecretCmd(g), newWebhooksDeliveriesCmd(g))
	return cmd
}

// hookURL completes a webhook URL the server gave as a path alone (it was
// started without --public-url) with the server the CLI talks to.
func (g *globals) hookURL(u string) string {
	if strings.HasPrefix(u, "/") {
		if server, _, err := g.endpoint(); err == nil {
			return strings.TrimRight(server, "/") + u
		}
	}
	return u
}

func (g *globals) showWebhook(app string, s *api.WebhookSettings) error {
	s.URL = g.hookURL(s.URL)
	if g.json() {
		return g.printJSON(s)
	}
	secret := "not set: no webhook is accepted (berth webhooks secret " + app + ")"
	if s.SecretSet {
		secret = "set (shown once when generated)"
	}
	branches := strings.Join(s.EffectiveBranches, ", ")
	if len(s.Branches) == 0 {
		branches += " (the app's branch)"
	}
	paths := strings.Join(s.Paths, ", ")
	if paths == "" {
		paths = "all (every push deploys)"
	}
	fmt.Fprintf(g.sys.out, "URL:      %s\nSecret:   %s\nBranches: %s\nPaths:    %s\n", s.URL, secret, branches, paths)
	return nil
}

func newWebhooksShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show APP",
		Short: "Show APP's webhook URL, whether it has a secret, its branch filter and watch paths",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			s, err := c.Webhook(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return g.showWebhook(args[0], s)
		},
	}
}

func newWebhooksSetCmd(g *globals) *cobra.Command {
	var branches, paths []string
	var clearBranches, clearPaths, setSecret, removeSecret bool
	cmd := &cobra.Command{
		Use:   "set APP [--branch B]... [--path P]... [--secret | --remove-secret]",
		Short: "Set APP's branch filter, watch paths or secret",
		Long: "--branch and --path replace the lists they name (repeat them for several; globs such as release/* " +
			"and services/*/go.mod work); lists not named keep their value. --secret sets a secret of your own, " +
			"read from BERTH_WEBHOOK_SECRET or the terminal (16-256 printable ASCII characters); --remove-secret " +
			"removes it, and the app accepts no webhook until it has one again.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app := args[0]
			if setSecret && removeSecret {
				return fmt.Errorf("use either --secret or --remove-secret")
			}
			if clearBranches && len(branches) > 0 || clearPaths && len(paths) > 0 {
				return fmt.Errorf("use either --branch or --clear-branches, and either --path or --clear-paths")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			cur, err := c.Webhook(cmd.Context(), app)
			if err != nil {
				return err
			}
			in := api.WebhookUpdate{Branches: cur.Branches, Paths: cur.Paths}
			switch {
			case clearBranches:
				in.Branches = []string{}
			case cmd.Flags().Changed("branch"):
				in.Branches = branches
			}
			switch {
			case clearPaths:
				in.Paths = []string{}
			case cmd.Flags().Changed("path"):
				in.Paths = paths
			}
			switch {
			case removeSecret:
				in.Secret = new(string)
			case setSecret:
				s, err := g.readSecret("BERTH_WEBHOOK_SECRET", "Webhook secret: ")
				if err != nil {
					return err
				}
				in.Secret = &s
			}
			s, err := c.SetWebhook(cmd.Context(), app, in)
			if err != nil {
				return err
			}
			return g.showWebhook(app, s)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&branches, "branch", nil, "a branch (or glob) whose pushes deploy; repeat for several")
	f.StringArrayVar(&paths, "path", nil, "a watch path (prefix or glob): deploy only when a file under it changed; repeat for several")
	f.BoolVar(&clearBranches, "clear-branches", false, "deploy pushes to the app's own branch only (the default)")
	f.BoolVar(&clearPaths, "clear-paths", false, "deploy on every change (the default)")
	f.BoolVar(&setSecret, "secret", false, "set a secret of your own, read from BERTH_WEBHOOK_SECRET or the terminal")
	f.BoolVar(&removeSecret, "remove-secret", false, "remove the secret: no webhook is accepted")
	return cmd
}

// readSecret reads a secret from the environment variable env or, on a
// terminal, without echo.
func (g *globals) readSecret(env, prompt string) (string, error) {
	if s := g.sys.getenv(env); s != "" {
		return s, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", fmt.Errorf("no secret: set %s or run on a terminal", env)
	}
	fmt.Fprint(g.sys.err, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(g.sys.err)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	return string(b), nil
}

func newWebhooksSecretCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "secret APP",
		Short: "Generate a new webhook secret for APP (it replaces the old one and is shown once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			s, err := c.NewWebhookSecret(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			s.URL = g.hookURL(s.URL)
			if g.json() {
				return g.printJSON(s)
			}
			fmt.Fprintf(g.sys.out, "Paste these in the provider's webhook settings (content type application/json).\n"+
				"The secret is shown this once; the old one no longer works.\n\nURL:    %s\nSecret: %s\n", s.URL, s.Secret)
			return nil
		},
	}
}

func newWebhooksDeliveriesCmd(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "deliveries APP",
		Short: "List APP's webhook deliveries, newest first, with what berth did and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ds, err := c.WebhookDeliveries(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			if g.json() {
				if ds == nil {
					ds = []berth.WebhookDelivery{}
				}
				return g.printJSON(ds)
			}
			now := time.Now()
			t := newTable(g.sys.out, "RECEIVED", "PROVIDER", "EVENT", "OUTCOME", "DEPLOYMENT", "REF", "COMMIT", "REASON")
			for _, d := range ds {
				dep := ""
				if d.DeploymentNumber > 0 {
					dep = fmt.Sprintf("#%d", d.DeploymentNumber)
				}
				commit := d.Commit
				if len(commit) > 12 {
					commit = commit[:12]
				}
				t.row(age(d.ReceivedAt, now), string(d.Provider), clipText(d.Event, 24), string(d.Outcome), dep,
					clipText(strings.TrimPrefix(d.Ref, "refs/heads/"), 32), commit, clipText(d.Reason, 100))
			}
			return t.flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many (1-1000)")
	return cmd
}
