package api

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthhq/berth/git"
)

// TestMain runs the test binary as the pre-receive hook of pushes when git
// starts it under that name, as the berth binary does.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == git.HookName {
		os.Exit(git.RunHook(context.Background(), os.Stdin, os.Stdout, os.Getenv))
	}
	os.Exit(m.Run())
}

// hookProgram is this test binary, the hook of pushes to a test server.
func hookProgram(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}
