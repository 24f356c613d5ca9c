// Package dockertest gives the tests of any package a real Docker Engine:
// a connection (skipping the test when there is no Engine, failing it under
// CI=true), per-test labels whose objects are removed when the test ends,
// a busybox base image imported offline from the host's static busybox, and
// FROM scratch images of Go programs compiled by the test.
//
// The Engine on a test machine has no images and cannot pull, so every image
// a test runs comes from here.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthhq/berth/build"
	"github.com/berthhq/berth/docker"
)

// Labels put on test objects.
const (
	LabelTest = "berth.test"     // "1" on every Docker object a test creates
	LabelRun  = "berth.test.run" // unique per test: what Cleanup removes
)

// BusyboxImage is the tag of the image Busybox imports.
const BusyboxImage = "berth-test/busybox:latest"

// BusyboxPath is the static busybox the image is made from (Debian's
// busybox-static).
const BusyboxPath = "/bin/busybox"

// absent skips the test, or fails it when CI=true, because a component the
// test needs is missing.
func absent(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (CI=true: a missing component is a failure)", args...)
	}
	t.Skipf(format+" (skipping; with CI=true this fails)", args...)
}

// Engine connects to the Docker Engine at $DOCKER_HOST (default: the local
// socket) and closes the connection when the test ends. Without a reachable
// Engine the test is skipped, or failed when CI=true.
func Engine(t testing.TB) *docker.Engine {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	eng, err := docker.New(os.Getenv("DOCKER_HOST"), log)
	if err != nil {
		t.Fatalf("docker.New: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := eng.Ping(ctx); err != nil {
		absent(t, "no Docker engine: %v", err)
	}
	return eng
}

// Name returns a unique Docker object name starting with "berth-test-" and
// prefix.
func Name(prefix string) string {
	return "berth-test-" + prefix + "-" + randomHex(6)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Cleanup returns the labels a test puts on every Docker object it creates
// ({LabelTest: "1", LabelRun: <unique>}; the map is the caller's) and
// registers the removal, when the test ends, of every container, network,
// volume and image carrying that LabelRun value. Objects of tests running
// concurrently, in this process or another, have other values and are left
// alone. A failed removal fails the test.
func Cleanup(t testing.TB, eng *docker.Engine) map[string]string {
	t.Helper()
	run := randomHex(8)
	sel := map[string]string{LabelRun: run}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := eng.RemoveLabelled(ctx, sel); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return map[string]string{LabelTest: "1", LabelRun: run}
}

// With returns a copy of labels with extra added.
func With(labels map[string]string, extra map[string]string) map[string]string {
	out := maps.Clone(labels)
	maps.Copy(out, extra)
	return out
}

// busyboxMu makes the import happen once per process; a lock file does the
// same across the test binaries `go test ./...` runs in parallel.
var busyboxMu sync.Mutex

// Busybox returns BusyboxImage, importing it first if the Engine lacks it:
// a root filesystem holding BusyboxPath as /bin/busybox, a symbolic link for
// each of its applets (sh, httpd, wget, sleep, cat, echo, ls…), /etc/passwd
// and /tmp, loaded with the Engine API's image import. The image carries
// LabelTest=1 and is shared by every test, so no Cleanup removes it.
func Busybox(t testing.TB, eng *docker.Engine) string {
	t.Helper()
	busyboxMu.Lock()
	defer busyboxMu.Unlock()
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "berth-test-busybox.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("busybox image lock: %v", err)
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("busybox image lock: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if ok, err := eng.ImageExists(ctx, BusyboxImage); err != nil {
		t.Fatalf("busybox image: %v", err)
	} else if ok {
		return BusyboxImage
	}
	if _, err := os.Stat(BusyboxPath); err != nil {
		absent(t, "no static busybox at %s (Debian package busybox-static): %v", BusyboxPath, err)
	}
	rootfs, err := busyboxRootfs(BusyboxPath)
	if err != nil {
		t.Fatalf("busybox rootfs: %v", err)
	}
	if err := eng.ImportImage(ctx, bytes.NewReader(rootfs), BusyboxImage, []string{"LABEL " + LabelTest + "=1", `CMD ["sh"]`}); err != nil {
		t.Fatalf("import busybox image: %v", err)
	}
	if ok, err := eng.ImageExists(ctx, BusyboxImage); err != nil || !ok {
		t.Fatalf("busybox image missing after import (err %v)", err)
	}
	return BusyboxImage
}

// busyboxRootfs builds the root filesystem tar of the busybox image.
func busyboxRootfs(bin string) ([]byte, error) {
	exe, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	list, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	add := func(h *tar.Header, body []byte) error {
		h.ModTime = now
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, d := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "var", "var/www", "proc", "sys", "dev"} {
		if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}, nil); err != nil {
			return nil, err
		}
	}
	if err := add(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}, nil); err != nil {
		return nil, err
	}
	files := []struct {
		name string
		mode int64
		body []byte
	}{
		{"bin/busybox", 0o755, exe},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
	for _, f := range files {
		if err := add(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.body))}, f.body); err != nil {
			return nil, err
		}
	}
	for _, p := range strings.Fields(string(list)) {
		if !strings.Contains(p, "/") || p == "bin/busybox" {
			continue // "linuxrc" and busybox itself
		}
		if err := add(&tar.Header{Typeflag: tar.TypeSymlink, Name: p, Linkname: "/bin/busybox", Mode: 0o777}, nil); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// GoImage compiles a Go program statically (CGO_ENABLED=0) and builds a FROM
// scratch image of it with b.BinaryImage, tagged tag and labelled labels
// (pass Cleanup's labels so that the image goes away with the test). src is
// either a directory holding a main package or the source text of a
// self-contained main package using the standard library only. The program
// runs as the image's entrypoint.
func GoImage(t testing.TB, b *build.Builder, src, tag string, labels map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	pkg := src
	if st, err := os.Stat(src); err != nil || !st.IsDir() {
		pkg = filepath.Join(dir, "src")
		if err := os.Mkdir(pkg, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, "go.mod"), []byte("module berthtest\n\ngo 1.26\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "app")
	cmd := exec.Command("go", "build", "-trimpath", "-o", exe, ".")
	cmd.Dir = pkg
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	id, err := b.BinaryImage(ctx, exe, tag, labels)
	if err != nil {
		t.Fatalf("build image of %s: %v", tag, err)
	}
	return id
}
