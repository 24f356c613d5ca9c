//go:build !unix

package git

import "os/exec"

// killGroup leaves cmd as it is: cancellation kills git only.
func killGroup(cmd *exec.Cmd) {}

// terminateGroup leaves cmd as it is: cancellation kills git only.
func terminateGroup(cmd *exec.Cmd) {}
