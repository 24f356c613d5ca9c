package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
)

// gitRemote is what berth git-remote prints with -o json.
type gitRemote struct {
	App    string `json:"app"`
	URL    string `json:"url"`
	Branch string `json:"branch"`
}

func newGitRemoteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "git-remote APP",
		Short: "Print the URL of an app's hosted git remote: git push to it deploys",
		Long: `Print the URL of the hosted git remote of APP, an app created with --push:

  git remote add berth "$(berth git-remote APP)"
  git push berth main

git authenticates with an API token of berth as the password (any user
name), so git's credential helpers can keep it; in CI, pass it as a header:

  git -c http.extraHeader="Authorization: Bearer $BERTH_TOKEN" push berth main

The push shows the build and deploy log as it runs, and fails when the
deployment does not go live (the branch then stays where it was).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			a, err := c.App(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.Source.Kind != berth.SourcePush {
				return fmt.Errorf("app %s deploys from %s, not from git push: change that with berth apps set %s --push", a.Name, sourceOf(a.Source), a.Name)
			}
			server, _, err := g.endpoint()
			if err != nil {
				return err
			}
			u, err := url.Parse(strings.TrimRight(server, "/"))
			if err != nil {
				return err
			}
			u.Path += "/git/" + a.Name + ".git"
			r := gitRemote{App: a.Name, URL: u.String(), Branch: a.Source.Ref}
			if g.json() {
				return g.printJSON(r)
			}
			_, err = fmt.Fprintln(g.sys.out, r.URL)
			return err
		},
	}
}
