//go:build unix

package git

import (
	"os/exec"
	"syscall"
)

// killGroup makes cmd the leader of a new process group and has its
// cancellation kill the whole group, so that git's helpers (git-remote-http,
// ssh) die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// terminateGroup makes cmd the leader of a new process group whose
// cancellation sends SIGTERM to the whole group (git, its hooks and their
// children): receive-pack then removes its quarantined objects itself.
// Past cmd.WaitDelay, git is killed.
func terminateGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
}
