package gittest

import (
	"bytes"
	"os/exec"
	"strings"
)

// Command returns git with args, ready to run in the repository with its
// isolated environment plus env, for a test that needs the process itself
// (to interrupt a push).
func (r *Repo) Command(env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(r.git, args...)
	cmd.Dir = r.dir
	cmd.Env = append(isolatedEnv(r.home), env...)
	return cmd
}

// Try runs git with args in the repository like Git, with env added to its
// isolated environment, and returns its standard output and error output
// and its error (an *exec.ExitError when git exits non-zero) instead of
// failing the test: for a push or a clone whose refusal is the point.
func (r *Repo) Try(env []string, args ...string) (stdout, stderr string, err error) {
	r.t.Helper()
	cmd := r.Command(env, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// RemoteHead is the commit branch points at in remote (a URL or a remote's
// name), read with git ls-remote; "" when the remote has no such branch.
func (r *Repo) RemoteHead(remote, branch string) string {
	r.t.Helper()
	out, stderr, err := r.Try(nil, "ls-remote", "--", remote, "refs/heads/"+branch)
	if err != nil {
		r.t.Fatalf("ls-remote: %v\n%s", err, stderr)
	}
	id, _, _ := strings.Cut(out, "\t")
	return strings.TrimSpace(id)
}

// InOrder reports whether every part occurs in s, each after the one
// before: for git's output, whose lines come in a known order.
func InOrder(s string, parts ...string) bool {
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}
