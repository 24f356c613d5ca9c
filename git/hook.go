package git

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// A push to a hosted remote is decided by its pre-receive hook: only that
// hook's exit status can make `git push` fail, and it runs while the pushed
// objects are still quarantined, before any ref moves. berth's hook is the
// berth binary itself, started by receive-pack through a link named
// "pre-receive" in a directory made for one push (HookSession). It does no
// work of its own: it sends the ref updates it reads on its standard input
// to the server over a unix socket in that directory, authenticated by a
// one-time token, prints every line the server sends back (git shows them
// to the pusher as "remote: …", as they come) and exits 0 only if the
// server says the push may land.

// Environment variables of the hook, set by the server for one push.
const (
	HookSocketEnv = "BERTH_HOOK_SOCKET"
	HookTokenEnv  = "BERTH_HOOK_TOKEN"
)

// HookName is the name the hook program is started under.
const HookName = "pre-receive"

// Limits on what a hook sends.
const (
	maxHookUpdates = 1000
	maxHookRequest = 1 << 20
	maxRefName     = 1024
)

// HookUpdate is one ref a push changes, as receive-pack tells its
// pre-receive hook: the old and new object IDs (all zeros for a ref that is
// created or deleted) and the ref's full name.
type HookUpdate struct {
	Old string `json:"old"`
	New string `json:"new"`
	Ref string `json:"ref"`
}

// zeroRE matches the object ID of "no object".
var zeroRE = regexp.MustCompile(`^0+$`)

// Deletes reports whether the update deletes its ref.
func (u HookUpdate) Deletes() bool { return zeroRE.MatchString(u.New) }

// HookRequest is what the hook sends the server, as one JSON line.
type HookRequest struct {
	Token string `json:"token"`
	// Quarantine is the directory holding the pushed objects
	// (GIT_QUARANTINE_PATH); see Repos.Archive.
	Quarantine string       `json:"quarantine"`
	Updates    []HookUpdate `json:"updates"`
}

// HookMessage is one JSON line the server sends the hook: a line of text
// for the pusher, or the verdict (Done) that ends the exchange.
type HookMessage struct {
	Text string `json:"text,omitempty"`
	Done bool   `json:"done,omitempty"`
	OK   bool   `json:"ok,omitempty"` // with Done: the push may land
}

var objectIDRE = regexp.MustCompile(`^[0-9a-f]{40}$|^[0-9a-f]{64}$`)

// ParseHookUpdates reads the lines receive-pack writes to a pre-receive
// hook ("<old> <new> <ref>").
func ParseHookUpdates(r io.Reader) ([]HookUpdate, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxHookRequest))
	var out []HookUpdate
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, " ", 3)
		if len(out) == maxHookUpdates {
			return nil, fmt.Errorf("more than %d refs in one push", maxHookUpdates)
		}
		if len(parts) != 3 {
			return nil, fmt.Errorf("malformed ref update %q", clip(line))
		}
		u := HookUpdate{Old: parts[0], New: parts[1], Ref: parts[2]}
		if err := u.check(); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read ref updates: %w", err)
	}
	return out, nil
}

// check validates the shape of an update (the server decides what it may
// change).
func (u HookUpdate) check() error {
	if !objectIDRE.MatchString(u.Old) || !objectIDRE.MatchString(u.New) || len(u.Old) != len(u.New) {
		return fmt.Errorf("malformed object IDs in the update of %q", clip(u.Ref))
	}
	if u.Ref == "" || len(u.Ref) > maxRefName || !utf8.ValidString(u.Ref) || strings.IndexFunc(u.Ref, isSpaceOrControl) >= 0 {
		return fmt.Errorf("malformed ref name %q", clip(u.Ref))
	}
	return nil
}

// RunHook is the pre-receive hook: the berth binary runs it when it is
// started as HookName. It reads the ref updates from stdin, hands them to
// the server named by the environment (getenv), writes every line the
// server sends to out and returns the exit status: 0 when the server
// accepts the push. When ctx ends (git push was interrupted) the
// connection closes, which tells the server to stop.
func RunHook(ctx context.Context, stdin io.Reader, out io.Writer, getenv func(string) string) int {
	say := func(format string, args ...any) int {
		fmt.Fprintf(out, "berth: "+format+"\n", args...)
		return 1
	}
	socket, token := getenv(HookSocketEnv), getenv(HookTokenEnv)
	if socket == "" || token == "" {
		return say("this hook only runs inside a push to a berth server")
	}
	updates, err := ParseHookUpdates(stdin)
	if err != nil {
		return say("%v", err)
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := d.DialContext(dctx, "unix", socket)
	cancel()
	if err != nil {
		return say("cannot reach the server: %v", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req := HookRequest{Token: token, Quarantine: getenv("GIT_QUARANTINE_PATH"), Updates: updates}
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return say("cannot reach the server: %v", err)
	}
	dec := json.NewDecoder(bufio.NewReader(conn))
	for {
		var m HookMessage
		if err := dec.Decode(&m); err != nil {
			if ctx.Err() != nil {
				return say("interrupted")
			}
			return say("the server hung up before the push was decided")
		}
		if m.Done {
			if m.OK {
				return 0
			}
			return 1
		}
		fmt.Fprintln(out, m.Text)
	}
}

// HookSession is the server's end of one push: a private directory holding
// the hooks directory for receive-pack (core.hooksPath) with a link named
// pre-receive to the hook program, and the unix socket the hook reports
// to. Close removes it all.
type HookSession struct {
	dir    string
	socket string
	token  string
	ln     net.Listener
	once   sync.Once
}

// NewHookSession prepares the hook of one push. program is the hook
// program: the berth binary, which runs RunHook when started as HookName.
func NewHookSession(program string) (*HookSession, error) {
	const op = "prepare push hook"
	if !filepath.IsAbs(program) {
		return nil, fmt.Errorf("%s: hook program %q is not an absolute path", op, program)
	}
	// A short path: unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "berth-push-")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	h := &HookSession{dir: dir, socket: filepath.Join(dir, "hook.sock")}
	fail := func(err error) (*HookSession, error) {
		h.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "hooks"), 0o700); err != nil {
		return fail(err)
	}
	if err := os.Symlink(program, filepath.Join(dir, "hooks", HookName)); err != nil {
		return fail(err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fail(err)
	}
	h.token = hex.EncodeToString(b[:])
	if h.ln, err = net.Listen("unix", h.socket); err != nil {
		return fail(err)
	}
	return h, nil
}

// HooksDir is the directory to give receive-pack as core.hooksPath.
func (h *HookSession) HooksDir() string { return filepath.Join(h.dir, "hooks") }

// Env is the environment that leads the hook to this session.
func (h *HookSession) Env() []string {
	return []string{HookSocketEnv + "=" + h.socket, HookTokenEnv + "=" + h.token}
}

// Close stops listening and removes the session's directory.
func (h *HookSession) Close() error {
	h.once.Do(func() {
		if h.ln != nil {
			h.ln.Close()
		}
		os.RemoveAll(h.dir)
	})
	return nil
}

// ErrNoHook is returned by Accept when ctx ended before a hook called.
var ErrNoHook = errors.New("no hook called")

// Accept waits for the hook of this push and reads its request. A caller
// that does not present the session's token is hung up on. Accept returns
// ErrNoHook when ctx ends first (receive-pack ended without running the
// hook). One hook is accepted: the session listens no more afterwards.
func (h *HookSession) Accept(ctx context.Context) (*HookConn, error) {
	stop := context.AfterFunc(ctx, func() { h.ln.Close() })
	defer stop()
	for {
		conn, err := h.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ErrNoHook
			}
			return nil, fmt.Errorf("accept push hook: %w", err)
		}
		c, err := h.read(conn)
		if err != nil {
			conn.Close()
			continue
		}
		h.ln.Close()
		return c, nil
	}
}

// read reads and checks the request of a hook.
func (h *HookSession) read(conn net.Conn) (*HookConn, error) {
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(io.LimitReader(conn, maxHookRequest)).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("read hook request: %w", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	var req HookRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return nil, fmt.Errorf("decode hook request: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(req.Token), []byte(h.token)) != 1 {
		return nil, errors.New("hook request with a wrong token")
	}
	if len(req.Updates) > maxHookUpdates {
		return nil, fmt.Errorf("more than %d refs in one push", maxHookUpdates)
	}
	for _, u := range req.Updates {
		if err := u.check(); err != nil {
			return nil, err
		}
	}
	c := &HookConn{Request: req, conn: conn, enc: json.NewEncoder(conn), gone: make(chan struct{})}
	go func() {
		// The hook sends nothing more: a read ends when it hangs up.
		_, _ = io.Copy(io.Discard, conn)
		close(c.gone)
	}()
	return c, nil
}

// HookConn is the connection of an accepted hook.
type HookConn struct {
	Request HookRequest
	conn    net.Conn
	mu      sync.Mutex
	enc     *json.Encoder
	gone    chan struct{}
}

// Say sends lines of text for the pusher.
func (c *HookConn) Say(text string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if err := c.enc.Encode(HookMessage{Text: line}); err != nil {
			return err
		}
	}
	return nil
}

// Finish sends the verdict and closes the connection.
func (c *HookConn) Finish(ok bool) error {
	c.mu.Lock()
	err := c.enc.Encode(HookMessage{Done: true, OK: ok})
	c.mu.Unlock()
	if cerr := c.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close hangs up without a verdict (the push fails).
func (c *HookConn) Close() error { return c.conn.Close() }

// Gone is closed when the hook hangs up (it ended, or git push was
// interrupted).
func (c *HookConn) Gone() <-chan struct{} { return c.gone }
