package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteArchive(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret"), "do not ship\n")
	write(t, filepath.Join(dir, "Dockerfile"), "FROM scratch\n")
	write(t, filepath.Join(dir, "src", "main.go"), "package main\n")
	write(t, filepath.Join(dir, ".git", "HEAD"), "ref: refs/heads/main\n")
	write(t, filepath.Join(dir, "sub", ".git"), "gitdir: ../.git\n") // a worktree's .git file
	links := map[string]string{
		"inside":       "src/main.go",
		"src/up":       "../Dockerfile",
		"abs":          "/etc/passwd",
		"escape":       "../" + filepath.Base(outside) + "/secret",
		"src/escape":   "../../etc",
		"outside-dir":  outside,
		"dot-dot-self": "src/../../x",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	var buf, warn bytes.Buffer
	if err := writeArchive(dir, &buf, &warn); err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]string{}
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			got[h.Name] = string(b)
		case tar.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		case tar.TypeDir:
			got[h.Name] = "dir"
		default:
			t.Errorf("%s: unexpected type %c", h.Name, h.Typeflag)
		}
		if h.Uid != 0 || h.Uname != "" {
			t.Errorf("%s: owner %d/%q leaks from the client", h.Name, h.Uid, h.Uname)
		}
	}
	want := map[string]string{
		"Dockerfile":  "FROM scratch\n",
		"src/":        "dir",
		"src/main.go": "package main\n",
		"sub/":        "dir",
		"inside":      "-> src/main.go",
		"src/up":      "-> ../Dockerfile",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %q, want %q", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("archive holds %q", names)
	}
	for _, n := range names {
		if strings.Contains(n, ".git") {
			t.Errorf("archive holds %s", n)
		}
	}
	for _, skipped := range []string{"abs", "escape", "src/escape", "outside-dir", "dot-dot-self"} {
		if !strings.Contains(warn.String(), "skipping "+skipped+":") {
			t.Errorf("no warning for %s:\n%s", skipped, warn.String())
		}
	}
	if slices.Contains(names, "escape") || strings.Contains(buf.String(), "do not ship") {
		t.Error("content from outside the directory was archived")
	}
}

func TestLinkInside(t *testing.T) {
	tests := []struct {
		path, target string
		want         bool
	}{
		{"a", "b", true},
		{"d/a", "../b", true},
		{"d/a", "../../b", false},
		{"a", "..", false},
		{"a", ".", true},
		{"a", "/b", false},
		{"a", "", false},
		{"d/e/a", "../../x", true},
		{"d/e/a", "../../../x", false},
	}
	for _, tt := range tests {
		if got := linkInside(tt.path, tt.target); got != tt.want {
			t.Errorf("linkInside(%q, %q) = %v, want %v", tt.path, tt.target, got, tt.want)
		}
	}
}
