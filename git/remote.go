package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

// Repos keeps the bare repositories of berth's hosted remotes, one per app
// (named by the app's ID, never by its name, so that a deleted app's code
// never reaches a new app of the same name), and runs git's smart HTTP
// services on them: receive-pack (git push) and upload-pack (git clone and
// fetch). git runs as argv with a hardened environment, as for Fetch: no
// system or user configuration, no prompts, and no hooks but the
// pre-receive hook the caller names (see HookSession).
type Repos struct {
	Dir string // directory of the repositories (created on demand)
	Git string // path of the git binary; default "git"
}

// Service is one of git's smart HTTP services.
type Service string

// The services berth serves.
const (
	ReceivePack Service = "git-receive-pack" // git push
	UploadPack  Service = "git-upload-pack"  // git clone, fetch, pull
)

// protocolRE is the Git-Protocol header a client may send
// ("version=2", possibly with more colon-separated key=value pairs).
var protocolRE = regexp.MustCompile(`^[a-z0-9=:.-]{1,64}$`)

// ValidProtocol reports whether v is an acceptable Git-Protocol header
// value, which reaches git through GIT_PROTOCOL.
func ValidProtocol(v string) bool { return v == "" || protocolRE.MatchString(v) }

// ServiceRequest is one exchange of git's smart HTTP protocol.
type ServiceRequest struct {
	Service Service
	AppID   string
	// Advertise asks for the ref advertisement (GET info/refs) instead of
	// the exchange itself (POST git-receive-pack / git-upload-pack).
	Advertise bool
	Protocol  string    // the client's Git-Protocol header, checked with ValidProtocol
	Stdin     io.Reader // the request body (nil for Advertise)
	Stdout    io.Writer // the response body
	// Hooks is the directory of the hooks receive-pack runs (see
	// HookSession); empty runs none.
	Hooks string
	// Env is added to the environment of git and so of its hooks.
	Env []string
	// MaxInput refuses a pushed pack larger than this many bytes; 0 = no
	// limit.
	MaxInput int64
}

// Path returns the path of the repository of app appID (which need not
// exist).
func (rs *Repos) Path(appID string) (string, error) {
	if !berth.ValidID("app", appID) {
		return "", berth.E("find repository", berth.Invalid, "app ID %q is not an app ID", clip(appID))
	}
	if rs.Dir == "" {
		return "", errors.New("find repository: no repository directory configured")
	}
	return filepath.Join(rs.Dir, appID+".git"), nil
}

// Init creates the repository of app appID if it does not exist yet and
// returns its path. Its default branch is branch, so that a clone checks
// out the branch that deploys.
func (rs *Repos) Init(ctx context.Context, appID, branch string) (string, error) {
	const op = "create repository"
	dir, err := rs.Path(appID)
	if err != nil {
		return "", err
	}
	if err := berth.ValidBranch(branch); err != nil {
		return "", berth.E(op, berth.Invalid, "%v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(rs.Dir, 0o700); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	// git init in a temporary directory, renamed into place: a crash never
	// leaves half a repository under the final name.
	tmp, err := os.MkdirTemp(rs.Dir, ".init-")
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	defer os.RemoveAll(tmp)
	if _, err := rs.run(ctx, "", nil, "init", "-q", "--bare", "--template=", "--initial-branch="+branch, "--", tmp); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "HEAD")); serr == nil {
			return dir, nil // made meanwhile by another request
		}
		return "", fmt.Errorf("%s: %w", op, err)
	}
	return dir, nil
}

// Exists reports whether app appID has a repository.
func (rs *Repos) Exists(appID string) bool {
	dir, err := rs.Path(appID)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "HEAD"))
	return err == nil
}

// Remove deletes the repository of app appID; a missing one is not an
// error.
func (rs *Repos) Remove(appID string) error {
	dir, err := rs.Path(appID)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove repository: %w", err)
	}
	return nil
}

// SetHead points the repository's HEAD at branch, so that a clone checks
// it out (the app's branch may change after the repository was made).
func (rs *Repos) SetHead(ctx context.Context, appID, branch string) error {
	dir, err := rs.Path(appID)
	if err != nil {
		return err
	}
	if err := berth.ValidBranch(branch); err != nil {
		return berth.E("set HEAD", berth.Invalid, "%v", err)
	}
	_, err = rs.run(ctx, dir, nil, "symbolic-ref", "HEAD", "refs/heads/"+branch)
	return err
}

// quarantinePrefix starts the name of the directory where receive-pack
// keeps a push's objects until its pre-receive hook accepts them.
const quarantinePrefix = "tmp_objdir-incoming-"

// ClearQuarantine removes the quarantine directories a receive-pack that
// was killed left in the repository of app appID. The caller makes sure no
// push to the app is running.
func (rs *Repos) ClearQuarantine(appID string) error {
	dir, err := rs.Path(appID)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(dir, "objects"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clear quarantine: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), quarantinePrefix) {
			if err := os.RemoveAll(filepath.Join(dir, "objects", e.Name())); err != nil {
				return fmt.Errorf("clear quarantine: %w", err)
			}
		}
	}
	return nil
}

// Serve runs one smart HTTP exchange: git receive-pack or upload-pack with
// --stateless-rpc, its input from req.Stdin and its output to req.Stdout
// as it comes (the caller flushes). For an advertisement, the service line
// of the smart protocol is written first (protocol v0 and v1). When ctx
// ends, git gets SIGTERM (so that receive-pack removes the objects it
// quarantined) and, if it lingers, SIGKILL.
func (rs *Repos) Serve(ctx context.Context, req ServiceRequest) error {
	op := "serve " + string(req.Service)
	if req.Service != ReceivePack && req.Service != UploadPack {
		return berth.E(op, berth.Invalid, "unknown git service %q", clip(string(req.Service)))
	}
	if !ValidProtocol(req.Protocol) {
		return berth.E(op, berth.Invalid, "Git-Protocol header %q is not acceptable", clip(req.Protocol))
	}
	dir, err := rs.Path(req.AppID)
	if err != nil {
		return err
	}
	hooks := req.Hooks
	if hooks == "" {
		hooks = os.DevNull
	}
	args := []string{
		"-c", "core.hooksPath=" + hooks,
		"-c", "core.fsmonitor=false",
		// The pre-receive hook decides what may change: deletions and
		// forced updates reach it.
		"-c", "receive.denyDeletes=false",
		"-c", "receive.denyNonFastForwards=false",
		"-c", "receive.fsckObjects=true",
		"-c", "receive.advertisePushOptions=false",
		"-c", "receive.shallowUpdate=false",
		"-c", "gc.autoDetach=false", // nothing outlives the request
		"-c", "uploadpack.allowAnySHA1InWant=false",
	}
	if req.MaxInput > 0 {
		args = append(args, "-c", "receive.maxInputSize="+strconv.FormatInt(req.MaxInput, 10))
	}
	args = append(args, strings.TrimPrefix(string(req.Service), "git-"), "--stateless-rpc")
	if req.Advertise {
		args = append(args, "--advertise-refs")
	}
	args = append(args, dir)
	v2 := strings.Contains(req.Protocol, "version=2")
	if req.Advertise && !(v2 && req.Service == UploadPack) {
		// Protocol v2 starts with its capability advertisement instead.
		if _, err := io.WriteString(req.Stdout, pktLine("# service="+string(req.Service)+"\n")+"0000"); err != nil {
			return err
		}
	}
	env := req.Env
	if req.Protocol != "" {
		env = append(slices.Clip(env), "GIT_PROTOCOL="+req.Protocol)
	}
	stderr := &tail{max: 8 << 10}
	cmd, cleanup, err := rs.command(ctx, dir, env, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer cleanup()
	cmd.Stdin = req.Stdin
	if cmd.Stdin == nil {
		cmd.Stdin = strings.NewReader("")
	}
	cmd.Stdout = req.Stdout
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &berth.Error{Op: op, Kind: berth.Invalid, Msg: "git " + strings.TrimPrefix(string(req.Service), "git-") + ": " + summary(string(stderr.buf)), Err: err}
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// pktLine frames s as one pkt-line of git's protocol.
func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

// Resolve returns the commit that ref names in the repository of app
// appID: a branch ("main" or "refs/heads/main"), a tag or a commit ID,
// resolved as git resolves them. A ref that names no commit is an Invalid
// error.
func (rs *Repos) Resolve(ctx context.Context, appID, ref string) (string, error) {
	const op = "resolve ref"
	dir, err := rs.Path(appID)
	if err != nil {
		return "", err
	}
	if err := berth.ValidGitRef(ref); err != nil {
		return "", berth.E(op, berth.Invalid, "%v", err)
	}
	if !rs.Exists(appID) {
		return "", berth.E(op, berth.Invalid, "nothing has been pushed yet")
	}
	out, err := rs.run(ctx, dir, nil, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return "", berth.E(op, berth.Invalid, "%q names no commit of the hosted repository", ref)
	}
	return out, nil
}

// Archive writes a tar archive of the tree of commit (a full commit ID) in
// the repository of app appID to w. quarantine, when set, is the directory
// in which receive-pack holds the objects of a push while its pre-receive
// hook runs (GIT_QUARANTINE_PATH): the commit is read from there, before
// the push is accepted. It must be a quarantine directory of this
// repository.
func (rs *Repos) Archive(ctx context.Context, appID, commit, quarantine string, w io.Writer) error {
	const op = "archive commit"
	dir, err := rs.Path(appID)
	if err != nil {
		return err
	}
	if !fullSHARE.MatchString(commit) && !sha256RE.MatchString(commit) {
		return berth.E(op, berth.Invalid, "%q is not a full commit ID", clip(commit))
	}
	var env []string
	if quarantine != "" {
		objects := filepath.Join(dir, "objects")
		q := filepath.Clean(quarantine)
		if filepath.Dir(q) != objects || !strings.HasPrefix(filepath.Base(q), quarantinePrefix) {
			return berth.E(op, berth.Invalid, "quarantine %q is not one of this repository", clip(quarantine))
		}
		if st, err := os.Lstat(q); err != nil || !st.IsDir() {
			return berth.E(op, berth.Invalid, "quarantine %q does not exist", clip(quarantine))
		}
		env = []string{"GIT_OBJECT_DIRECTORY=" + q, "GIT_ALTERNATE_OBJECT_DIRECTORIES=" + objects, "GIT_QUARANTINE_PATH=" + q}
	}
	got, err := rs.run(ctx, dir, env, "rev-parse", "--verify", "--quiet", "--end-of-options", commit+"^{commit}")
	if err != nil || got != commit {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return berth.E(op, berth.Invalid, "%s is not a commit", commit)
	}
	cmd, cleanup, err := rs.command(ctx, dir, env, "archive", "--format=tar", commit)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer cleanup()
	stderr := &tail{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = w, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		return fmt.Errorf("%s %s: %w: %s", op, commit, err, summary(string(stderr.buf)))
	}
	return nil
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// remoteConfig is passed to every git command on a hosted repository.
var remoteConfig = []string{
	"-c", "core.fsmonitor=false",
	"-c", "credential.helper=",
	"-c", "gc.auto=0",
	"-c", "maintenance.auto=false",
	"-c", "protocol.allow=never",
}

// run runs git with args (after remoteConfig) in dir and returns its
// trimmed standard output.
func (rs *Repos) run(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd, cleanup, err := rs.command(ctx, dir, env, slices.Concat(remoteConfig, args)...)
	if err != nil {
		return "", err
	}
	defer cleanup()
	var stdout bytes.Buffer
	stderr := &tail{max: 8 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		return "", &runError{args: args[0], stderr: string(stderr.buf), err: err}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// command prepares git with args in dir (a temporary directory when
// empty), with the hardened environment plus env. cleanup removes the
// temporary HOME.
func (rs *Repos) command(ctx context.Context, dir string, env []string, args ...string) (*exec.Cmd, func(), error) {
	bin := rs.Git
	if bin == "" {
		bin = "git"
	}
	home, err := os.MkdirTemp("", "berth-git-")
	if err != nil {
		return nil, nil, fmt.Errorf("create git home: %w", err)
	}
	if dir == "" {
		dir = home
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(hardenedEnv(home, ""), env...)
	terminateGroup(cmd)
	cmd.WaitDelay = 10 * time.Second
	return cmd, func() { os.RemoveAll(home) }, nil
}
