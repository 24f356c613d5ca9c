package build

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestIgnored(t *testing.T) {
	tests := []struct {
		name     string
		patterns string
		path     string
		want     bool
	}{
		{"plain file", "secret.txt", "secret.txt", true},
		{"plain file elsewhere", "secret.txt", "a/secret.txt", false},
		{"directory excludes contents", "node_modules", "node_modules/x/y.js", true},
		{"leading slash", "/build", "build/out", true},
		{"star at root only", "*.log", "a.log", true},
		{"star not across dirs", "*.log", "logs/a.log", false},
		{"double star any depth", "**/*.log", "logs/a/b.log", true},
		{"double star zero dirs", "**/*.log", "a.log", true},
		{"double star in middle", "a/**/z", "a/b/c/z", true},
		{"double star middle zero", "a/**/z", "a/z", true},
		{"double star trailing", "tmp/**", "tmp/x/y", true},
		{"question mark", "file?.txt", "file1.txt", true},
		{"class", "[ab].txt", "c.txt", false},
		{"negation re-includes", "*.md\n!README.md", "README.md", false},
		{"negation then exclude again", "*.md\n!README.md\nREADME.md", "README.md", true},
		{"comment and blank", "# *.go\n\n", "main.go", false},
		{"dot segments cleaned", "./a/../b", "b", true},
		{"no match", "foo", "bar", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rules, err := parseIgnore(strings.NewReader(tc.patterns))
			if err != nil {
				t.Fatal(err)
			}
			if got := ignored(rules, tc.path); got != tc.want {
				t.Fatalf("ignored(%q, %q) = %v, want %v", tc.patterns, tc.path, got, tc.want)
			}
		})
	}
	if _, err := parseIgnore(strings.NewReader("[")); err == nil {
		t.Fatal("bad pattern accepted")
	}
}

// TestWriteContext packs a context and reads the tar back.
func TestWriteContext(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"Dockerfile":              "FROM scratch\n",
		".dockerignore":           "*.env\nnode_modules\n**/*.log\n!keep.log\n.git\ndocker/ignored.txt\n",
		"main.go":                 "package main\n",
		"secret.env":              "TOKEN=1\n",
		"node_modules/x/index.js": "x\n",
		"logs/a/b.log":            "log\n",
		"logs/a/notes.md":         "md\n",
		"keep.log":                "kept\n",
		".git/config":             "[core]\n",
		"docker/app.Dockerfile":   "FROM scratch\n",
		"docker/ignored.txt":      "x\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "outside")); err != nil {
		t.Fatal(err)
	}
	outsideDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(outsideDir, "host-secret"), []byte("no"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outsideDir, filepath.Join(dir, "linkdir")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		dockerfile string
		want       []string
	}{
		{"Dockerfile", []string{".dockerignore", "Dockerfile", "docker/", "docker/app.Dockerfile", "keep.log", "linkdir", "logs/", "logs/a/", "logs/a/notes.md", "main.go", "outside"}},
		// An ignored Dockerfile is sent anyway: the Engine needs it.
		{"docker/ignored.txt", []string{".dockerignore", "Dockerfile", "docker/", "docker/app.Dockerfile", "docker/ignored.txt", "keep.log", "linkdir", "logs/", "logs/a/", "logs/a/notes.md", "main.go", "outside"}},
	} {
		var buf bytes.Buffer
		if err := writeContext(&buf, dir, tc.dockerfile, nil); err != nil {
			t.Fatal(err)
		}
		got := map[string]*tar.Header{}
		tr := tar.NewReader(&buf)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Uid != 0 || h.Gid != 0 || h.Uname != "" {
				t.Errorf("%s: owner %d/%d %q not normalized", h.Name, h.Uid, h.Gid, h.Uname)
			}
			if h.Typeflag == tar.TypeReg {
				body, _ := io.ReadAll(tr)
				if string(body) != files[h.Name] {
					t.Errorf("%s: content %q", h.Name, body)
				}
			}
			got[h.Name] = h
		}
		names := slices.Sorted(maps.Keys(got))
		if !slices.Equal(names, tc.want) {
			t.Errorf("dockerfile %s: context holds %q, want %q", tc.dockerfile, names, tc.want)
		}
		for _, link := range []string{"outside", "linkdir"} {
			if h := got[link]; h == nil || h.Typeflag != tar.TypeSymlink {
				t.Errorf("%s must be stored as a symbolic link, never followed: %+v", link, h)
			}
		}
	}
}

// TestContextLeavesGitOut: a checkout's .git is not sent unless the
// .dockerignore takes it back.
func TestContextLeavesGitOut(t *testing.T) {
	names := func(ignore string) map[string]bool {
		t.Helper()
		dir := t.TempDir()
		files := map[string]string{"Dockerfile": "FROM scratch\n", ".git/config": "[remote]\n", ".gitignore": "x\n", "sub/.git/HEAD": "ref\n"}
		if ignore != "" {
			files[".dockerignore"] = ignore
		}
		for name, body := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if err := writeContext(&buf, dir, "Dockerfile", nil); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		tr := tar.NewReader(&buf)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return got
			}
			if err != nil {
				t.Fatal(err)
			}
			got[h.Name] = true
		}
	}
	if got := names(""); got[".git/config"] || got[".git/"] || !got[".gitignore"] || !got["sub/.git/HEAD"] {
		t.Errorf("without .dockerignore: %v (want .git left out, .gitignore and sub/.git kept)", got)
	}
	if got := names("!.git\n"); !got[".git/config"] {
		t.Errorf("with !.git: %v (want .git sent)", got)
	}
}
