// Package build builds container images from Dockerfiles through the Docker
// Engine's build endpoint (the classic builder, which every Engine from
// Docker 20.10 on has): it packs the build context itself, honouring
// .dockerignore and never following a symbolic link out of the context,
// applies the limits the engine asks for, and streams the build output as
// plain lines to the caller, which stores it with the deployment.
package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	buildtypes "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/docker"
)

// Options tune a Builder.
type Options struct {
	NoCache bool // build every step again instead of reusing cached layers
}

// Builder builds images on one Docker Engine. It is safe for concurrent use.
type Builder struct {
	cli  *client.Client
	log  *slog.Logger
	opts Options
}

// New returns a Builder that builds on eng.
func New(eng *docker.Engine, log *slog.Logger, opts Options) *Builder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Builder{cli: eng.Client(), log: log, opts: opts}
}

var (
	targetRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	buildArgRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// Build builds spec, writes the build output to out line by line and returns
// the new image's ID. A failing build step is a berth.Invalid error whose
// message is the Engine's ("build failed: The command … returned a non-zero
// code: 1"). Cancelling ctx cancels the build; the Engine then removes the
// step's container.
func (b *Builder) Build(ctx context.Context, spec berth.BuildSpec, out io.Writer) (string, error) {
	const op = "build image"
	root, dockerfile, err := checkSpec(op, spec)
	if err != nil {
		return "", err
	}
	if out == nil {
		out = io.Discard
	}
	opts := client.ImageBuildOptions{
		Dockerfile:  dockerfile,
		Target:      spec.Target,
		Labels:      spec.Labels,
		Remove:      true,
		ForceRemove: true,
		PullParent:  false,
		NoCache:     b.opts.NoCache,
		Version:     buildtypes.BuilderV1,
	}
	if spec.Tag != "" {
		opts.Tags = []string{spec.Tag}
	}
	if len(spec.Args) > 0 {
		opts.BuildArgs = make(map[string]*string, len(spec.Args))
		for k, v := range spec.Args {
			opts.BuildArgs[k] = &v
		}
	}
	if spec.MemoryBytes > 0 {
		opts.Memory, opts.MemorySwap = spec.MemoryBytes, spec.MemoryBytes
	}
	if spec.NanoCPUs > 0 {
		const period = 100_000 // µs, the kernel's default CFS period
		opts.CPUPeriod = period
		opts.CPUQuota = max(spec.NanoCPUs*period/1e9, 1000)
	}

	extra, err := labelDockerfile(root, dockerfile, &opts)
	if err != nil {
		return "", berth.Wrap(op, berth.Invalid, err)
	}
	start := time.Now()
	pr, pw := io.Pipe()
	tarErr := make(chan error, 1)
	go func() {
		err := writeContext(pw, root, dockerfile, extra)
		pw.CloseWithError(err)
		tarErr <- err
	}()
	id, err := b.send(ctx, op, pr, opts, out)
	pr.CloseWithError(errors.New("build ended"))
	if terr := <-tarErr; terr != nil && err != nil && ctx.Err() == nil {
		return "", berth.Wrap(op, berth.Invalid, fmt.Errorf("pack build context %s: %w", spec.ContextDir, terr))
	}
	if err != nil {
		return "", err
	}
	if id == "" && spec.Tag != "" {
		img, err := b.cli.ImageInspect(ctx, spec.Tag)
		if err != nil {
			return "", berth.Wrap(op, berth.Internal, fmt.Errorf("inspect built image %s: %w", spec.Tag, err))
		}
		id = img.ID
	}
	if id == "" {
		return "", berth.E(op, berth.Internal, "the Docker engine reported no image ID")
	}
	b.log.Debug("image built", "tag", spec.Tag, "image", id, "duration", time.Since(start).Round(time.Millisecond))
	return id, nil
}

// labeledDockerfile is the name, in the build context, of the copy of the
// Dockerfile that carries the image's labels.
const labeledDockerfile = ".berth.Dockerfile"

// labelDockerfile puts all of opts.Labels into one LABEL instruction at the
// end of a copy of the Dockerfile, added to the context as an extra file.
// The classic builder turns every label of the build request into a step of
// its own (about a second each on some storage drivers); one instruction is
// one step, and it is cached like any other. With a target stage the last
// stage may not be the one built, so the labels stay in the request.
func labelDockerfile(root, dockerfile string, opts *client.ImageBuildOptions) (map[string][]byte, error) {
	if len(opts.Labels) == 0 || opts.Target != "" {
		return nil, nil
	}
	if _, err := os.Lstat(filepath.Join(root, labeledDockerfile)); err == nil {
		return nil, nil // the name is taken: keep the slow way
	}
	body, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(dockerfile)))
	if err != nil {
		return nil, fmt.Errorf("read dockerfile: %w", err)
	}
	keys := slices.Sorted(maps.Keys(opts.Labels))
	var b strings.Builder
	b.Write(body)
	b.WriteString("\nLABEL")
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", strconv.Quote(k), strconv.Quote(opts.Labels[k]))
	}
	b.WriteString("\n")
	opts.Dockerfile, opts.Labels = labeledDockerfile, nil
	return map[string][]byte{labeledDockerfile: []byte(b.String())}, nil
}

// checkSpec validates spec and returns the resolved context directory and
// the Dockerfile's slash path inside it.
func checkSpec(op string, spec berth.BuildSpec) (root, dockerfile string, err error) {
	bad := func(format string, args ...any) error { return berth.E(op, berth.Invalid, format, args...) }
	if spec.ContextDir == "" {
		return "", "", bad("no build context directory")
	}
	root, err = filepath.EvalSymlinks(spec.ContextDir)
	if err != nil {
		return "", "", bad("build context %s: %v", spec.ContextDir, errors.Unwrap(err))
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return "", "", bad("build context %s is not a directory", spec.ContextDir)
	}
	dockerfile = spec.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if err := berth.ValidRelPath(dockerfile); err != nil || !filepath.IsLocal(filepath.FromSlash(dockerfile)) {
		return "", "", bad("dockerfile %q: must be a path inside the build context", clip(dockerfile))
	}
	dockerfile = path.Clean(dockerfile)
	real, err := filepath.EvalSymlinks(filepath.Join(root, filepath.FromSlash(dockerfile)))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", berth.E(op, berth.Invalid, "dockerfile %s not found in the build context", dockerfile)
	}
	if err != nil {
		return "", "", bad("dockerfile %s: %v", dockerfile, errors.Unwrap(err))
	}
	if rel, err := filepath.Rel(root, real); err != nil || !filepath.IsLocal(rel) {
		return "", "", bad("dockerfile %s points outside the build context", dockerfile)
	}
	if st, err := os.Stat(real); err != nil || !st.Mode().IsRegular() {
		return "", "", bad("dockerfile %s is not a regular file", dockerfile)
	}
	if spec.Tag != "" {
		if err := berth.ValidImageRef(spec.Tag); err != nil {
			return "", "", bad("tag: %v", err)
		}
	}
	if spec.Target != "" && !targetRE.MatchString(spec.Target) {
		return "", "", bad("build target %q is not a valid stage name", clip(spec.Target))
	}
	for k, v := range spec.Args {
		if !buildArgRE.MatchString(k) || strings.ContainsRune(v, 0) {
			return "", "", bad("build arg %q: names use letters, digits and '_', values cannot contain NUL", clip(k))
		}
	}
	for k, v := range spec.Labels {
		if k == "" || strings.ContainsAny(k, "=\x00\n") || strings.ContainsRune(v, 0) {
			return "", "", bad("label %q is not acceptable", clip(k))
		}
	}
	if spec.MemoryBytes < 0 || (spec.MemoryBytes > 0 && spec.MemoryBytes < 6<<20) || spec.NanoCPUs < 0 {
		return "", "", bad("build limits: memory must be 0 or at least 6 MiB, CPUs not negative")
	}
	return root, dockerfile, nil
}

// send posts the context to the Engine and decodes the reply.
func (b *Builder) send(ctx context.Context, op string, tarball io.Reader, opts client.ImageBuildOptions, out io.Writer) (string, error) {
	res, err := b.cli.ImageBuild(ctx, tarball, opts)
	if err != nil {
		return "", wrapCtx(ctx, op, fmt.Errorf("start build: %w", err))
	}
	defer res.Body.Close()
	return decode(ctx, op, res.Body, out)
}

// message is one JSON message of the build endpoint's reply.
type message struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Progress    string `json:"progress"`
	ID          string `json:"id"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// decode writes the build output to out as lines and returns the image ID
// reported by the Engine, or the build's error.
func decode(ctx context.Context, op string, body io.Reader, out io.Writer) (string, error) {
	lw := &lineWriter{w: out}
	var id string
	dec := json.NewDecoder(body)
	for {
		var m message
		err := dec.Decode(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			lw.flush()
			return "", wrapCtx(ctx, op, fmt.Errorf("read build output: %w", err))
		}
		switch {
		case m.ErrorDetail != nil || m.Error != "":
			msg := m.Error
			if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
				msg = m.ErrorDetail.Message
			}
			msg = strings.TrimSpace(msg)
			lw.flush()
			if _, err := io.WriteString(out, msg+"\n"); err != nil {
				return "", berth.Wrap(op, berth.Internal, fmt.Errorf("write build output: %w", err))
			}
			return "", berth.E(op, berth.Invalid, "build failed: %s", msg)
		case len(m.Aux) > 0:
			var aux struct{ ID string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		case m.Stream != "":
			_, err = lw.Write([]byte(m.Stream))
		case m.Status != "":
			line := m.Status
			if m.ID != "" {
				line = m.ID + ": " + line
			}
			if m.Progress != "" {
				line += " " + m.Progress
			}
			_, err = lw.Write([]byte(line + "\n"))
		}
		if err != nil {
			return "", berth.Wrap(op, berth.Internal, fmt.Errorf("write build output: %w", err))
		}
	}
	if err := lw.flush(); err != nil {
		return "", berth.Wrap(op, berth.Internal, fmt.Errorf("write build output: %w", err))
	}
	return id, nil
}

// wrapCtx classifies an error of the build request: a cancelled build, a
// request the Engine refused, or an Engine that went away.
func wrapCtx(ctx context.Context, op string, err error) error {
	switch {
	case ctx.Err() != nil:
		return berth.Wrap(op, berth.Unavailable, fmt.Errorf("build cancelled: %w", ctx.Err()))
	case cerrdefs.IsInvalidArgument(err), cerrdefs.IsNotFound(err):
		return berth.Wrap(op, berth.Invalid, err)
	}
	return berth.Wrap(op, berth.Unavailable, err)
}

// BinaryImage builds an image FROM scratch holding the static executable at
// binaryPath as /berth, its entrypoint, tagged tag and labelled labels. The
// control plane builds the proxy's image from its own executable with it.
func (b *Builder) BinaryImage(ctx context.Context, binaryPath, tag string, labels map[string]string) (string, error) {
	const op = "build binary image"
	src, err := os.Open(binaryPath)
	if err != nil {
		return "", berth.Wrap(op, berth.Invalid, fmt.Errorf("open binary: %w", err))
	}
	defer src.Close()
	if st, err := src.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", berth.E(op, berth.Invalid, "%s is not a regular file", binaryPath)
	}
	dir, err := os.MkdirTemp("", "berth-image-")
	if err != nil {
		return "", berth.Wrap(op, berth.Internal, fmt.Errorf("make context directory: %w", err))
	}
	defer os.RemoveAll(dir)
	dst, err := os.OpenFile(filepath.Join(dir, "berth"), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return "", berth.Wrap(op, berth.Internal, err)
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", berth.Wrap(op, berth.Internal, fmt.Errorf("copy binary: %w", err))
	}
	const dockerfile = "FROM scratch\nCOPY berth /berth\nENTRYPOINT [\"/berth\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", berth.Wrap(op, berth.Internal, err)
	}
	var output bytes.Buffer
	id, err := b.Build(ctx, berth.BuildSpec{ContextDir: dir, Tag: tag, Labels: labels}, &output)
	if err != nil {
		b.log.Debug("binary image build output", "output", output.String())
		return "", err
	}
	return id, nil
}

// lineWriter passes whole lines to w, keeping a partial line until its end
// arrives or flush is called.
type lineWriter struct {
	w   io.Writer
	buf []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			return n, nil
		}
		l.buf = append(l.buf, p[:i+1]...)
		p = p[i+1:]
		_, err := l.w.Write(l.buf)
		l.buf = l.buf[:0]
		if err != nil {
			return 0, err
		}
	}
}

func (l *lineWriter) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.w.Write(append(l.buf, '\n'))
	l.buf = l.buf[:0]
	return err
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}
