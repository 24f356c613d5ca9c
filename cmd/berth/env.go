package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth/api"
)

func newEnvCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "env", Short: "Manage an app's environment variables"}
	cmd.AddCommand(&cobra.Command{
		Use:     "list APP",
		Aliases: []string{"ls"},
		Short:   "List env vars (values need a token with the read-secrets scope)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			vars, err := c.Env(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.json() {
				if vars == nil {
					vars = []api.EnvVar{}
				}
				return g.printJSON(vars)
			}
			t := newTable(g.sys.out, "KEY", "VALUE", "UPDATED")
			now := time.Now()
			for _, v := range vars {
				val := v.Value
				if v.Redacted {
					val = "(redacted)"
				} else if val == "" {
					val = `""`
				}
				t.row(v.Key, val, age(v.UpdatedAt, now))
			}
			return t.flush()
		},
	})
	cmd.AddCommand(newEnvChangeCmd(g, "set APP KEY=VALUE...", "Set env vars (they apply from the next deployment)", true))
	cmd.AddCommand(newEnvChangeCmd(g, "unset APP KEY...", "Remove env vars (they apply from the next deployment)", false))
	return cmd
}

// newEnvChangeCmd returns `env set` (set) or `env unset`.
func newEnvChangeCmd(g *globals, use, short string, set bool) *cobra.Command {
	var deploy, detach bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			app := args[0]
			patch := api.EnvPatch{Deploy: deploy}
			if set {
				if patch.Set, err = parsePairs("env var", args[1:]); err != nil {
					return err
				}
			} else {
				for _, k := range args[1:] {
					if strings.Contains(k, "=") {
						return errors.New("env unset takes keys, not KEY=VALUE")
					}
				}
				patch.Unset = args[1:]
			}
			res, err := c.UpdateEnv(cmd.Context(), app, patch)
			if err != nil {
				return err
			}
			return g.envChanged(cmd.Context(), c, app, res, len(args)-1, set, detach)
		},
	}
	cmd.Flags().BoolVar(&deploy, "deploy", false, "deploy the app with the new env")
	cmd.Flags().BoolVar(&detach, "detach", false, "with --deploy, do not follow the deployment")
	return cmd
}

func (g *globals) envChanged(ctx context.Context, c *api.Client, app string, res *api.EnvResult, n int, set, detach bool) error {
	if res.Deployment != nil {
		if g.json() && detach {
			return g.printJSON(res)
		}
		return g.watch(ctx, c, app, res.Deployment, detach)
	}
	if g.json() {
		return g.printJSON(res)
	}
	verb := "Set"
	if !set {
		verb = "Unset"
	}
	fmt.Fprintf(g.sys.out, "%s %d env var(s) of %s; deploy to apply.\n", verb, n, app)
	return nil
}
