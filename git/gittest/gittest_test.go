package gittest_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/berthhq/berth/git/gittest"
)

func TestServe(t *testing.T) {
	r := gittest.NewRepo(t)
	r.Write("dir/a.txt", "a")
	first := r.Commit("first")
	r.Tag("v1")
	r.Branch("dev")
	second := r.Commit("second")
	if r.Head() != second || first == second {
		t.Fatalf("Head = %s; commits %s, %s", r.Head(), first, second)
	}
	base := gittest.Serve(t, map[string]*gittest.Repo{"app": r})

	ls := func() string {
		cmd := exec.Command(gittest.Git(t), "ls-remote", "--", base+"/app.git")
		cmd.Env = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git ls-remote: %v\n%s", err, out)
		}
		return string(out)
	}
	got := ls()
	for _, want := range []string{first + "\trefs/heads/main", second + "\trefs/heads/dev", first + "\trefs/tags/v1^{}"} {
		if !strings.Contains(got, want) {
			t.Errorf("ls-remote lacks %q:\n%s", want, got)
		}
	}
	// A new commit is served at once.
	third := r.Commit("third")
	if got := ls(); !strings.Contains(got, third+"\trefs/heads/dev") {
		t.Errorf("ls-remote lacks the new commit %s:\n%s", third, got)
	}
}
