// Command berth is the berth platform-as-a-service: `berth server` runs the
// control plane, `berth proxy` the edge, and every other subcommand is a
// client of the control plane's REST API. Started under the name
// pre-receive, it is the git hook of pushes to berth's hosted remotes.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth/git"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	if filepath.Base(os.Args[0]) == git.HookName {
		// git receive-pack runs this binary as the pre-receive hook of a
		// push to a hosted remote (see api/gitpush.go).
		code := git.RunHook(ctx, os.Stdin, os.Stdout, os.Getenv)
		stop()
		os.Exit(code)
	}
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}

// run executes the command line args.
func run(ctx context.Context, args []string) error {
	return runWith(ctx, args, stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr, getenv: os.Getenv})
}

// stdio is what the client commands use of their process: where they
// write, and the environment they read (BERTH_SERVER, BERTH_TOKEN and the
// location of the config file). Tests pass their own.
type stdio struct {
	in       io.Reader // nil: the process's stdin
	out, err io.Writer
	getenv   func(string) string
}

// runWith executes the command line args with the given stdio.
func runWith(ctx context.Context, args []string, sys stdio) error {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "berth: a self-hosted platform-as-a-service",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g := addGlobals(root, sys)
	root.AddCommand(newServerCmd(), newProxyCmd())
	root.AddCommand(newLoginCmd(g), newAppsCmd(g), newDomainsCmd(g), newDeployCmd(g),
		newDeploymentsCmd(g), newDeploymentCmd(g), newRollbackCmd(g), newReleasesCmd(g),
		newEnvCmd(g), newLogsCmd(g), newStatusCmd(g), newVersionCmd(g), newPreviewsCmd(g), newGitRemoteCmd(g))
	root.AddCommand(newPasswdCmd(g), new2FACmd(g))
	root.AddCommand(newTeamsCmd(g), newMembersCmd(g), newProjectsCmd(g), newInviteCmd(g), newInvitationsCmd(g),
		newAcceptCmd(g), newTokensCmd(g), newAuditCmd(g))
	root.AddCommand(newWebhooksCmd(g))
	if sys.in != nil {
		root.SetIn(sys.in)
	}
	root.SetOut(sys.out)
	root.SetErr(sys.err)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
