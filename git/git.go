// Package git fetches application source code from Git repositories with the
// git binary, for the deploy engine (it implements engine.Source), and reads
// the webhooks Git hosting services send (webhook.go: signatures and
// payloads of GitHub, GitLab, Gitea/Forgejo and Bitbucket).
//
// Repository URLs and refs are user input, so they are checked where they
// are used (CheckURL, berth.ValidGitRef) and reach git only as argv after
// "--", never through a shell. git runs with a hardened environment: no
// system or user configuration, no credential helpers, no prompts, no hooks,
// only the http, https and ssh transports (plus local paths when the server
// allows them), and ssh in batch mode with berth's own configuration.
// Credentials in a URL never appear in an error, a log line or the progress
// output (see Redact).
//
// An app's credentials come with each fetch (berth.GitAuth, see auth.go):
// its deploy key, written to a 0600 file in the fetch's private directory
// and named in an ssh configuration file that GIT_SSH_COMMAND points to;
// its access token, handed to git as an http.extraHeader through the
// environment, never in argv or the repository's configuration; and the ssh
// host keys it trusts. A host the app does not know yet is trusted on first
// use and its key returned for the caller to pin; a known host showing
// another key is refused. NewDeployKey makes deploy keys and ParseHostKeys
// reads the known_hosts lines users pin.
//
// The server reaches a remote only where its egress policy allows (package
// egress): a URL whose host is or resolves to a loopback, private or
// link-local address is refused before git runs, unless private egress is
// allowed. For http(s) the addresses checked are handed to git
// (http.curloptResolve), so git connects to exactly those and a DNS answer
// that changes between the check and the connection (rebinding) is not
// followed; redirects are not followed either when private egress is
// refused. ssh resolves the name again itself: for ssh:// and scp-like URLs
// a short rebinding window remains between the check and ssh's own lookup.
//
// Submodules are not fetched.
//
// Statuses (status.go) posts commit statuses of preview environments to the
// APIs of GitHub, GitLab, Gitea/Forgejo and Bitbucket, through the same
// egress policy.
package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/egress"
)

// Fetcher checks out repositories with the git binary. The zero value is
// ready to use and reaches public addresses only.
type Fetcher struct {
	Git        string        // path of the git binary; default "git"
	AllowLocal bool          // accept absolute paths of local repositories
	Egress     egress.Policy // which addresses remotes may have; zero = public only
	Log        *slog.Logger  // default: discard
}

// sourceRef is where a fetched commit is kept in the checkout's repository.
const sourceRef = "refs/berth/source"

var (
	fullSHARE = regexp.MustCompile(`^[0-9a-f]{40}$`)
	abbrevRE  = regexp.MustCompile(`^[0-9a-f]{7,39}$`)
)

// Fetch checks out req.URL at req.Ref into the empty (or missing)
// directory req.Dir and returns the full commit ID. The ref is a branch, a
// tag, a full commit ID or any ref name the remote has ("HEAD",
// "refs/pull/1/head"); names resolve as git resolves them (a tag before a
// branch of the same name). Only the one commit is fetched when the server
// allows it; a commit ID the server will not hand out alone is found with a
// full fetch of branches and tags. git's progress is written to out. The
// directory ends up holding the work tree and its .git directory, with HEAD
// detached at the commit.
//
// req.Auth gives the credentials: the deploy key for ssh URLs, the access
// token for http(s) URLs (see sshSetup and tokenSetup), and the ssh host
// keys the app trusts. A host the app does not know yet is trusted on first
// use: its key comes back in FetchResult.NewHostKeys after a successful
// fetch, for the caller to pin; a known host that shows another key is
// refused.
//
// A bad URL or ref, a missing ref or repository, refused credentials and a
// changed host key are errors of kind Invalid; an unreachable server is
// Unavailable. When ctx ends, git and its children are killed and the
// error wraps ctx.Err(). No credential appears in out or in an error.
func (f *Fetcher) Fetch(ctx context.Context, req berth.FetchRequest, out io.Writer) (berth.FetchResult, error) {
	const op = "fetch source"
	url, ref := req.URL, req.Ref
	var res berth.FetchResult
	if err := CheckURL(url, f.AllowLocal); err != nil {
		return res, err
	}
	if err := berth.ValidGitRef(ref); err != nil {
		return res, berth.E(op, berth.Invalid, "%v", err)
	}
	dir, err := filepath.Abs(req.Dir)
	if err != nil {
		return res, berth.Wrap(op, berth.Internal, err)
	}
	if err := emptyDir(dir); err != nil {
		return res, berth.Wrap(op, berth.Internal, err)
	}
	if out == nil {
		out = io.Discard
	}
	shown := Redact(url)
	log := f.logger().With("url", shown, "ref", ref)
	log.Debug("fetch source", "dir", dir, "auth", req.Auth)
	start := time.Now()

	r, err := f.prepare(ctx, url, out, req.Auth)
	if err != nil {
		return res, err
	}
	defer r.close()
	if _, err := r.run(ctx, "init", "-q", "--template=", "--", dir); err != nil {
		return res, r.fail(ctx, op, shown, ref, err)
	}
	r.env = append(r.env, "GIT_DIR="+filepath.Join(dir, ".git"), "GIT_WORK_TREE="+dir)
	r.dir = dir

	_, err = r.run(ctx, "fetch", "--depth=1", "--no-tags", "--progress", "--", url, "+"+ref+":"+sourceRef)
	var commit string
	switch {
	case err == nil:
		commit, err = r.run(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", sourceRef+"^{commit}")
		if err != nil {
			if ctx.Err() != nil {
				return res, r.fail(ctx, op, shown, ref, err)
			}
			return res, berth.E(op, berth.Invalid, "ref %q in %s does not point at a commit", ref, shown)
		}
	case ctx.Err() == nil && (refMissing(err) && abbrevRE.MatchString(ref) || shaRefused(err) && fullSHARE.MatchString(ref)):
		// The server does not hand out this commit alone (or ref is an
		// abbreviated commit ID): fetch all branches and tags and look
		// for it there.
		log.Debug("fetch all branches and tags to find a commit")
		fmt.Fprintf(out, "berth: the server does not hand out %s alone; fetching all branches and tags to find the commit\n", ref)
		if _, err := r.run(ctx, "fetch", "--no-tags", "--progress", "--", url,
			"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"); err != nil {
			return res, r.fail(ctx, op, shown, ref, err)
		}
		commit, err = r.run(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
		if err != nil {
			if ctx.Err() != nil {
				return res, r.fail(ctx, op, shown, ref, err)
			}
			return res, notFound(op, ref, shown)
		}
	default:
		return res, r.fail(ctx, op, shown, ref, err)
	}
	if _, err := r.run(ctx, "checkout", "--progress", "--detach", commit, "--"); err != nil {
		return res, r.fail(ctx, op, shown, ref, err)
	}
	res.Commit = commit
	res.NewHostKeys = r.newHostKeys(time.Now())
	log.Debug("fetched source", "commit", commit, "duration", time.Since(start).Round(time.Millisecond), "new_host_keys", len(res.NewHostKeys))
	return res, nil
}

// LsRemote resolves ref in the repository at url to a commit ID without
// fetching, as Fetch would resolve it, with the credentials and trusted
// host keys of auth (a host not known yet is trusted for this call only). A
// full commit ID is returned as it is: a server cannot be asked whether it
// has one.
func (f *Fetcher) LsRemote(ctx context.Context, url, ref string, auth berth.GitAuth) (string, error) {
	const op = "resolve ref"
	if err := CheckURL(url, f.AllowLocal); err != nil {
		return "", err
	}
	if err := berth.ValidGitRef(ref); err != nil {
		return "", berth.E(op, berth.Invalid, "%v", err)
	}
	if fullSHARE.MatchString(ref) {
		return ref, nil
	}
	shown := Redact(url)
	r, err := f.prepare(ctx, url, nil, auth)
	if err != nil {
		return "", err
	}
	defer r.close()
	list, err := r.run(ctx, "ls-remote", "--", url, ref, ref+"^{}")
	if err != nil {
		return "", r.fail(ctx, op, shown, ref, err)
	}
	refs := map[string]string{}
	for _, line := range strings.Split(list, "\n") {
		if id, name, ok := strings.Cut(line, "\t"); ok {
			refs[name] = id
		}
	}
	for _, name := range []string{ref, "refs/" + ref, "refs/tags/" + ref, "refs/heads/" + ref} {
		if id, ok := refs[name+"^{}"]; ok {
			return id, nil
		}
		if id, ok := refs[name]; ok {
			return id, nil
		}
	}
	return "", notFound(op, ref, shown)
}

// pin checks url's host against the egress policy and returns the git
// options that make git connect to the addresses checked and nowhere else
// (http and https; ssh does its own lookup), and the addresses.
func (f *Fetcher) pin(ctx context.Context, url string) ([]string, []netip.Addr, error) {
	if isLocal(url) {
		return nil, nil, nil
	}
	addrs, err := f.Egress.Check(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	var opts []string
	if !f.Egress.AllowPrivate {
		// A redirect would lead git to a host nobody checked.
		opts = append(opts, "-c", "http.followRedirects=false")
	}
	u, perr := neturl.Parse(url)
	if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || strings.Contains(u.Hostname(), ":") {
		return opts, addrs, nil
	}
	if _, err := netip.ParseAddr(u.Hostname()); err == nil {
		return opts, addrs, nil // an address already: nothing to resolve
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	list := make([]string, len(addrs))
	for i, a := range addrs {
		list[i] = a.String()
		if a.Is6() {
			list[i] = "[" + list[i] + "]"
		}
	}
	return append(opts, "-c", "http.curloptResolve="+u.Hostname()+":"+port+":"+strings.Join(list, ",")), addrs, nil
}

// prepare checks url against the egress policy and returns a runner for
// it, with auth's credentials set up for the URL's transport: the deploy
// key and host keys for ssh, the token for http(s). The caller closes it.
func (f *Fetcher) prepare(ctx context.Context, url string, out io.Writer, auth berth.GitAuth) (*runner, error) {
	const op = "fetch source"
	pin, addrs, err := f.pin(ctx, url)
	if err != nil {
		return nil, err
	}
	r, err := f.runner(url, out)
	if err != nil {
		return nil, berth.Wrap(op, berth.Internal, err)
	}
	r.pin = pin
	r.secrets = append(r.secrets, auth.Secrets()...)
	// ssh is set up for every URL, so that nothing ever runs ssh with the
	// machine's configuration, keys or agent.
	if err := r.sshSetup(auth, isSSH(url)); err != nil {
		r.close()
		return nil, berth.Wrap(op, berth.Internal, err)
	}
	if auth.Token != "" && !isSSH(url) && !isLocal(url) {
		if err := f.tokenSetup(r, url, addrs, auth); err != nil {
			r.close()
			return nil, err
		}
	}
	return r, nil
}

func (f *Fetcher) logger() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

// config is passed to every git command: nothing from the fetched
// repository or the machine runs, and nothing is left running afterwards.
var config = []string{
	"-c", "protocol.ext.allow=never",
	"-c", "core.hooksPath=/dev/null",
	"-c", "core.symlinks=true",
	"-c", "core.fsmonitor=false",
	"-c", "advice.detachedHead=false",
	"-c", "credential.helper=",
	"-c", "init.defaultBranch=main",
	"-c", "fetch.recurseSubmodules=false",
	"-c", "submodule.recurse=false",
	"-c", "gc.auto=0",
	"-c", "maintenance.auto=false",
}

// runner runs git commands for one fetch.
type runner struct {
	git     string
	env     []string
	dir     string   // working directory
	home    string   // temporary HOME, removed by close
	pin     []string // options that pin the remote's addresses
	out     io.Writer
	secrets []string
	// Credentials (see auth.go).
	ssh       bool            // the URL is an ssh one
	hasKey    bool            // ssh uses the app's deploy key
	token     bool            // git sends the app's access token
	known     []berth.HostKey // host keys the app trusts
	knownFile string          // ssh's known_hosts for this run
}

func (f *Fetcher) runner(url string, out io.Writer) (*runner, error) {
	bin := f.Git
	if bin == "" {
		bin = "git"
	}
	home, err := os.MkdirTemp("", "berth-git-")
	if err != nil {
		return nil, fmt.Errorf("create git home: %w", err)
	}
	allow := "http:https:ssh"
	if isLocal(url) {
		allow += ":file"
	}
	return &runner{git: bin, env: hardenedEnv(home, allow), dir: home, home: home, out: out, secrets: secrets(url)}, nil
}

// hardenedEnv is the whole environment of every git berth runs: an empty
// home of its own, no system or user configuration, no prompts, and only
// the transports in allow ("http:https:ssh"; "" for none).
func hardenedEnv(home, allow string) []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"LC_ALL=C",
		"GIT_CEILING_DIRECTORIES=" + filepath.Dir(home),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_PROTOCOL_FROM_USER=0",
		"GIT_ALLOW_PROTOCOL=" + allow,
	}
}

func (r *runner) close() { os.RemoveAll(r.home) }

// runError is a failed git command with the end of its error output
// (credentials hidden).
type runError struct {
	args   string
	stderr string
	err    error
}

func (e *runError) Error() string {
	return fmt.Sprintf("git %s: %v: %s", e.args, e.err, strings.TrimSpace(e.stderr))
}

func (e *runError) Unwrap() error { return e.err }

// run runs git with args and returns its trimmed standard output. git's
// error output goes to r.out (when set), credentials hidden.
func (r *runner) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.git, slices.Concat(config, r.pin, args)...)
	cmd.Dir = r.dir
	cmd.Env = r.env
	killGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	stderr := &tail{max: 8 << 10}
	cmd.Stdout = &stdout
	var progress *redactor
	if r.out != nil {
		progress = &redactor{w: r.out, secrets: r.secrets}
		cmd.Stderr = io.MultiWriter(stderr, progress)
	} else {
		cmd.Stderr = stderr
	}
	err := cmd.Run()
	if progress != nil {
		progress.Flush()
	}
	if err != nil {
		return "", &runError{args: args[0], stderr: string(redact(stderr.buf, r.secrets)), err: err}
	}
	return strings.TrimSpace(stdout.String()), nil
}

// fail turns a failed git command into berth's error.
func (r *runner) fail(ctx context.Context, op, shown, ref string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w", op, shown, ctx.Err())
	}
	var re *runError
	if !errors.As(err, &re) {
		return berth.Wrap(op, berth.Internal, err)
	}
	var ee *exec.ExitError
	if !errors.As(re.err, &ee) {
		// git did not start: a problem of this server, not of the user.
		return berth.Wrap(op, berth.Internal, err)
	}
	switch re.args {
	case "fetch", "ls-remote":
	case "checkout":
		// The commit arrived but git cannot write its tree here.
		return &berth.Error{Op: op, Kind: berth.Invalid, Msg: "check out " + ref + ": " + summary(re.stderr), Err: err}
	default:
		return berth.Wrap(op, berth.Internal, err)
	}
	if refMissing(err) || shaRefused(err) {
		return notFound(op, ref, shown)
	}
	if aerr, ok := r.authError(op, shown, re.stderr, re.err); ok {
		return aerr
	}
	kind := berth.Invalid
	if has(re.stderr, "Could not resolve host", "Failed to connect", "Connection refused",
		"Connection timed out", "Operation timed out", "Connection reset", "Network is unreachable",
		"No route to host", "returned error: 5") && !has(re.stderr, "Permission denied") {
		kind = berth.Unavailable
	}
	return &berth.Error{Op: op, Kind: kind, Msg: shown + ": " + summary(re.stderr), Err: re.err}
}

func notFound(op, ref, shown string) error {
	return berth.E(op, berth.Invalid, "ref %q not found in %s", ref, shown)
}

func refMissing(err error) bool {
	var re *runError
	return errors.As(err, &re) && has(re.stderr, "couldn't find remote ref")
}

func shaRefused(err error) bool {
	var re *runError
	return errors.As(err, &re) && has(re.stderr, "not our ref", "unadvertised object")
}

func has(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// summary picks git's error lines out of its output.
func summary(stderr string) string {
	var msgs []string
	last := ""
	for _, line := range strings.FieldsFunc(stderr, func(r rune) bool { return r == '\n' || r == '\r' }) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		last = line
		for _, p := range []string{"fatal: ", "error: ", "ssh: "} {
			if rest, ok := strings.CutPrefix(line, p); ok {
				msgs = append(msgs, rest)
			}
		}
	}
	if len(msgs) == 0 {
		msgs = []string{last}
	}
	s := strings.Join(msgs, "; ")
	if len(s) > 300 {
		s = s[:297] + "..."
	}
	return s
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// emptyDir makes sure dir exists and is empty.
func emptyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("checkout directory %s is not empty", dir)
	}
	return nil
}
