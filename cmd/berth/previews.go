package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

func newPreviewsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "previews",
		Short: "Preview environments of pull requests (pr-<n>.<app domain>)",
		Long: "A pull (merge) request of an app's repository deploys its head to its own host, pr-<n>.<the app's first " +
			"domain>, as an app <app>-pr-<n>; closing or merging it tears the preview down. A request from a fork gets " +
			"no secrets until a member approves its head commit.",
	}
	cmd.AddCommand(newPreviewsListCmd(g), newPreviewsSettingsCmd(g), newPreviewsApproveCmd(g), newPreviewsDeleteCmd(g))
	return cmd
}

func newPreviewsListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list APP",
		Aliases: []string{"ls"},
		Short:   "List the previews of APP",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.Previews(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				if ps == nil {
					ps = []berth.Preview{}
				}
				return g.printJSON(ps)
			}
			now := time.Now()
			t := newTable(g.sys.out, "PR", "STATUS", "URL", "HEAD", "FORK", "APP", "UPDATED", "EXPIRES", "NOTE")
			for _, p := range ps {
				fork := "no"
				switch {
				case p.Fork && p.ApprovedSHA == p.HeadSHA:
					fork = "approved"
				case p.Fork:
					fork = "unapproved"
				}
				note := p.Message
				if p.PostError != "" {
					note = "status not posted: " + p.PostError
				}
				t.row("#"+strconv.Itoa(p.Number), p.Status, p.URL, berth.ShortSHA(p.HeadSHA), fork, p.ChildApp,
					age(p.UpdatedAt, now), until(p.ExpiresAt, now), clipText(note, 60))
			}
			return t.flush()
		},
	}
}

// until says how long until t, briefly: "in 6d".
func until(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if !t.After(now) {
		return "due"
	}
	return "in " + age(now, t)
}

func newPreviewsSettingsCmd(g *globals) *cobra.Command {
	var enable, disable, clearEnv, noToken bool
	var maxPreviews int
	var ttl, statusAPI, tokenEnv string
	var env []string
	cmd := &cobra.Command{
		Use:   "settings APP",
		Short: "Show or change the preview settings of APP",
		Long: "Show the preview settings of APP, or change those given: --enable/--disable, --max, --ttl (\"72h\", \"7d\"), " +
			"--env KEY=VALUE (repeatable; replaces every override), --status-api (the provider API's base URL; needed for " +
			"Gitea/Forgejo) and the status token, read from the environment variable named by --status-token-env so that " +
			"it never shows in a process list. The token is write-only.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var in api.PreviewSettingsInput
			changed := false
			switch {
			case enable && disable:
				return errors.New("use --enable or --disable, not both")
			case enable || disable:
				in.Enabled, changed = &enable, true
			}
			if cmd.Flags().Changed("max") {
				in.MaxPreviews, changed = &maxPreviews, true
			}
			if cmd.Flags().Changed("ttl") {
				in.TTL, changed = &ttl, true
			}
			if cmd.Flags().Changed("status-api") {
				in.StatusAPI, changed = &statusAPI, true
			}
			switch {
			case clearEnv && len(env) > 0:
				return errors.New("use --env or --clear-env, not both")
			case clearEnv:
				in.Env, changed = map[string]string{}, true
			case len(env) > 0:
				if in.Env, err = parsePairs("env var", env); err != nil {
					return err
				}
				changed = true
			}
			switch {
			case noToken && tokenEnv != "":
				return errors.New("use --status-token-env or --no-status-token, not both")
			case noToken:
				empty := ""
				in.StatusToken, changed = &empty, true
			case tokenEnv != "":
				tok := g.sys.getenv(tokenEnv)
				if tok == "" {
					return fmt.Errorf("--status-token-env %s: the variable is empty or not set", tokenEnv)
				}
				in.StatusToken, changed = &tok, true
			}
			var ps *api.PreviewSettings
			if changed {
				ps, err = c.SetPreviewSettings(cmd.Context(), args[0], in)
			} else {
				ps, err = c.PreviewSettings(cmd.Context(), args[0])
			}
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(ps)
			}
			state := "off"
			if ps.Enabled {
				state = "on"
			}
			base := ps.StatusAPI
			if base == "" {
				base = "(the provider's public API)"
			}
			token := "not set: no commit statuses are posted"
			if ps.StatusTokenSet {
				token = "set"
			}
			w := g.sys.out
			fmt.Fprintf(w, "Previews:      %s\nMax previews:  %d\nTime to live:  %s after the last push\nStatus API:    %s\nStatus token:  %s\n",
				state, ps.MaxPreviews, ps.TTL, base, token)
			if len(ps.Env) == 0 {
				fmt.Fprintln(w, "Env overrides: none")
				return nil
			}
			fmt.Fprintln(w, "Env overrides:")
			for _, v := range ps.Env {
				val := v.Value
				if v.Redacted {
					val = "(redacted)"
				}
				fmt.Fprintf(w, "  %s=%s\n", v.Key, val)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&enable, "enable", false, "turn previews on")
	f.BoolVar(&disable, "disable", false, "turn previews off (existing previews stay until their pull requests close or expire)")
	f.IntVar(&maxPreviews, "max", 0, "previews that may exist at once")
	f.StringVar(&ttl, "ttl", "", "time a preview lives after its last push, such as 72h or 7d")
	f.StringArrayVar(&env, "env", nil, "env override KEY=VALUE of every preview (repeatable; replaces all overrides)")
	f.BoolVar(&clearEnv, "clear-env", false, "remove every env override")
	f.StringVar(&statusAPI, "status-api", "", "base URL of the provider's API for commit statuses (\"\" = the provider's public API)")
	f.StringVar(&tokenEnv, "status-token-env", "", "name of an environment variable holding the status token")
	f.BoolVar(&noToken, "no-status-token", false, "remove the status token")
	return cmd
}

func newPreviewsApproveCmd(g *globals) *cobra.Command {
	var sha string
	cmd := &cobra.Command{
		Use:   "approve APP PR",
		Short: "Let the preview of a fork's pull request have APP's secrets",
		Long: "Approve the head commit of a fork's pull request PR: its preview is deployed again with APP's env and " +
			"build args. A later push needs a new approval. --sha names the commit you reviewed; the approval is refused " +
			"when the head has moved since. Needs the read-secrets permission.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := prNumber(args[1])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.ApprovePreview(cmd.Context(), args[0], n, sha)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(p)
			}
			fmt.Fprintf(g.sys.out, "Approved commit %s of pull request #%d; redeploying %s with %s's secrets.\n",
				berth.ShortSHA(p.ApprovedSHA), n, p.URL, args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&sha, "sha", "", "the head commit you reviewed")
	return cmd
}

func newPreviewsDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "delete APP PR",
		Aliases: []string{"rm"},
		Short:   "Tear down the preview of pull request PR now",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := prNumber(args[1])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			p, err := c.DeletePreview(cmd.Context(), args[0], n)
			if err != nil {
				return err
			}
			if g.json() {
				return g.printJSON(p)
			}
			fmt.Fprintf(g.sys.out, "Tearing down the preview of pull request #%d (%s).\n", n, p.ChildApp)
			return nil
		},
	}
}

// prNumber reads a pull request number, with or without its "#".
func prNumber(s string) (int, error) {
	if len(s) > 0 && s[0] == '#' {
		s = s[1:]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("pull request %q: use its number, such as 7", s)
	}
	return n, nil
}
