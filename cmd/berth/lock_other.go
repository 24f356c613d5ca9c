//go:build !unix

package main

// lockData does not lock on systems without flock; berth's server runs on
// Linux.
func lockData(string) (func(), error) { return func() {}, nil }
