package engine

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthhq/berth"
)

// Limits on an uploaded build context.
const (
	maxUploadFiles = 100_000
	maxUploadBytes = 2 << 30 // unpacked
)

// saveUpload stores an uploaded build context until its deployment runs.
func (e *Engine) saveUpload(deploymentID string, r io.Reader) error {
	p := e.uploadPath(deploymentID)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("save upload: %w", err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("save upload: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(p)
		return berth.Wrap("save upload", berth.Invalid, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(p)
		return fmt.Errorf("save upload: %w", err)
	}
	return nil
}

func (e *Engine) dropUpload(deploymentID string) { os.Remove(e.uploadPath(deploymentID)) }

// extractUpload unpacks a tar, gzipped or not, into dir. It accepts regular
// files, directories and symbolic links (as a git checkout has them), refuses
// paths that leave dir, and bounds the number and size of files. Every write
// goes through an os.Root, so a link cannot lead a later entry outside dir;
// a link may point anywhere, as in a checkout: the build context check
// (checkContext) and the context archive (package build) keep the build
// inside. It returns the number of files.
func extractUpload(tarPath, dir string) (int, error) {
	const op = "unpack upload"
	f, err := os.Open(tarPath)
	if err != nil {
		return 0, berth.E(op, berth.Invalid, "no uploaded build context for this deployment")
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return 0, berth.E(op, berth.Invalid, "the upload is not a valid gzip stream")
		}
		defer gz.Close()
		r = gz
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var files int
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return files, berth.E(op, berth.Invalid, "the upload is not a valid tar archive: %v", err)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return files, berth.E(op, berth.Invalid, "the upload holds a path outside its root: %q", h.Name)
		}
		if name == "." {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return files, fmt.Errorf("%s: %w", op, err)
			}
		case tar.TypeReg:
			files++
			total += h.Size
			if files > maxUploadFiles || total > maxUploadBytes {
				return files, berth.E(op, berth.Invalid, "the upload is larger than %d files or %d bytes", maxUploadFiles, maxUploadBytes)
			}
			if d := filepath.Dir(name); d != "." {
				if err := root.MkdirAll(d, 0o755); err != nil {
					return files, fmt.Errorf("%s: %w", op, err)
				}
			}
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			out, err := root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return files, fmt.Errorf("%s: %w", op, err)
			}
			_, err = io.Copy(out, io.LimitReader(tr, h.Size))
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return files, fmt.Errorf("%s: %w", op, err)
			}
		case tar.TypeSymlink:
			files++
			if files > maxUploadFiles {
				return files, berth.E(op, berth.Invalid, "the upload is larger than %d files or %d bytes", maxUploadFiles, maxUploadBytes)
			}
			if h.Linkname == "" || len(h.Linkname) > 4096 || strings.ContainsRune(h.Linkname, 0) {
				return files, berth.E(op, berth.Invalid, "the upload holds a link without a usable target: %q", h.Name)
			}
			if d := filepath.Dir(name); d != "." {
				if err := root.MkdirAll(d, 0o755); err != nil {
					return files, fmt.Errorf("%s: %w", op, err)
				}
			}
			if err := root.Symlink(h.Linkname, name); err != nil {
				return files, berth.E(op, berth.Invalid, "the upload holds %q twice or through a link: %v", h.Name, errors.Unwrap(err))
			}
		default:
			// Hard links, devices and the like are skipped: a build
			// context needs none of them.
		}
	}
	return files, nil
}
