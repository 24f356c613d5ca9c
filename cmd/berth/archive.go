package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// writeArchive writes dir as a gzipped tar to w: directories, regular files
// and the symbolic links that stay inside dir (as links, never followed).
// .git is skipped, and so are other file types and links that leave dir,
// each with a warning. Files are opened through an os.Root, so nothing
// outside dir is read even if the tree changes while it is archived.
func writeArchive(dir string, w io.Writer, warn io.Writer) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer root.Close()
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		info, err := root.Lstat(p)
		if err != nil {
			return err
		}
		link := ""
		switch mode := info.Mode(); {
		case mode.IsDir(), mode.IsRegular():
		case mode&fs.ModeSymlink != 0:
			if link, err = root.Readlink(p); err != nil {
				return err
			}
			if !linkInside(p, link) {
				fmt.Fprintf(warn, "warning: skipping %s: symbolic link to %s leaves the directory\n", p, link)
				return nil
			}
		default:
			fmt.Fprintf(warn, "warning: skipping %s: not a file, directory or link\n", p)
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = p
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := root.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, info.Size()); err != nil {
			return fmt.Errorf("%s changed while it was archived: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	return nil
}

// linkInside reports whether a symbolic link at p (slash-separated, relative
// to the archive root) with the given target resolves inside the root.
func linkInside(p, target string) bool {
	if target == "" || path.IsAbs(target) || strings.HasPrefix(target, `\`) {
		return false
	}
	resolved := path.Join(path.Dir(p), target)
	return resolved != ".." && !strings.HasPrefix(resolved, "../")
}
