package build

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// ignoreRule is one line of a .dockerignore file.
type ignoreRule struct {
	segs   []string // the pattern split at "/"; "**" matches any number of segments
	negate bool     // a "!" line: re-include what matches
}

// readIgnore reads the .dockerignore at the root of dir, if any.
func readIgnore(dir string) ([]ignoreRule, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseIgnore(f)
}

// parseIgnore parses .dockerignore lines: blank lines and "#" comments are
// skipped, "!" negates, a leading "/" is dropped (every pattern is relative
// to the context root) and patterns use filepath.Match syntax per segment,
// plus "**" for any number of directories.
func parseIgnore(r io.Reader) ([]ignoreRule, error) {
	var rules []ignoreRule
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var rule ignoreRule
		if strings.HasPrefix(line, "!") {
			rule.negate = true
			line = strings.TrimSpace(line[1:])
		}
		line = path.Clean(strings.TrimLeft(filepath.ToSlash(line), "/"))
		if line == "." || line == "" {
			continue
		}
		rule.segs = strings.Split(line, "/")
		for _, s := range rule.segs {
			if s == "**" {
				continue
			}
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf(".dockerignore pattern %q: %w", line, err)
			}
		}
		rules = append(rules, rule)
	}
	return rules, sc.Err()
}

// ignored reports whether rel (a slash path relative to the context root)
// is excluded: the last rule matching it or one of its parent directories
// decides.
func ignored(rules []ignoreRule, rel string) bool {
	segs := strings.Split(rel, "/")
	out := false
	for _, r := range rules {
		if matchPrefix(r.segs, segs) {
			out = !r.negate
		}
	}
	return out
}

// matchPrefix reports whether pattern matches path or one of its parent
// directories.
func matchPrefix(pattern, path []string) bool {
	for n := len(path); n > 0; n-- {
		if matchSegs(pattern, path[:n]) {
			return true
		}
	}
	return false
}

func matchSegs(pattern, name []string) bool {
	if len(pattern) == 0 {
		return len(name) == 0
	}
	if pattern[0] == "**" {
		for i := 0; i <= len(name); i++ {
			if matchSegs(pattern[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	ok, _ := path.Match(pattern[0], name[0])
	return ok && matchSegs(pattern[1:], name[1:])
}

// hasNegation reports whether any rule re-includes files, in which case an
// excluded directory must still be walked.
func hasNegation(rules []ignoreRule) bool {
	for _, r := range rules {
		if r.negate {
			return true
		}
	}
	return false
}

// writeContext writes the build context rooted at dir as a tar stream to w.
// Files excluded by .dockerignore (and .git, unless it says "!.git") are
// left out, except the Dockerfile and
// .dockerignore themselves, which the Engine needs. Symbolic links are
// stored as links and never followed; only regular files, directories and
// links are included.
func writeContext(w io.Writer, dir, dockerfile string, extra map[string][]byte) error {
	rules, err := readIgnore(dir)
	if err != nil {
		return fmt.Errorf("read .dockerignore: %w", err)
	}
	// The checkout's .git stays out of the context (and so out of the
	// image a "COPY . ." makes) unless the .dockerignore takes it back
	// with "!.git": it holds the whole history and the remote's URL.
	rules = append([]ignoreRule{{segs: []string{".git"}}}, rules...)
	walkExcluded := hasNegation(rules)
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if rel != dockerfile && rel != ".dockerignore" && ignored(rules, rel) {
			if d.IsDir() && !walkExcluded && !strings.HasPrefix(dockerfile, rel+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		switch mode := info.Mode(); {
		case mode.IsRegular(), mode.IsDir():
		case mode&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			return nil // sockets, devices, pipes
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for name, body := range extra {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(body); err != nil {
			return err
		}
	}
	return tw.Close()
}
