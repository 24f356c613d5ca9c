package gittest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// SSHD is where tests find OpenSSH's server (Debian's openssh-server).
const SSHD = "/usr/sbin/sshd"

// SSHServer is a real OpenSSH server on 127.0.0.1 that serves repositories
// over ssh (git-upload-pack) to the keys it authorizes. It has its own
// configuration, host key and authorized_keys, runs only while the test
// does, and starts one `sshd -i` per connection, so the host key and the
// authorized keys can change between connections.
type SSHServer struct {
	t    testing.TB
	dir  string // configuration, keys
	root string // repositories: <root>/<name>.git
	user string
	port int

	mu      sync.Mutex
	hostKey string // public, authorized_keys form
	conns   int
	log     bytes.Buffer
	running map[*exec.Cmd]bool // sshd processes serving a connection
	closed  bool
}

// ServeSSH serves repos over ssh until the test ends, to the public keys
// (authorized_keys lines) given. It skips the test when sshd is not
// installed, unless env CI is "true", where it fails. Run as root, it
// creates sshd's privilege separation directory (/run/sshd) when it is
// missing, as the openssh-server service would.
func ServeSSH(t testing.TB, repos map[string]*Repo, authorized ...string) *SSHServer {
	t.Helper()
	Git(t)
	if _, err := os.Stat(SSHD); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sshd is required under CI=true (apt-get install openssh-server): %v", err)
		}
		t.Skipf("sshd not installed (apt-get install openssh-server): %v", err)
	}
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("create sshd's privilege separation directory: %v", err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	s := &SSHServer{t: t, dir: t.TempDir(), root: t.TempDir(), user: u.Username, running: map[*exec.Cmd]bool{}}
	for name, r := range repos {
		if !repoNameRE.MatchString(name) || strings.Contains(name, "..") {
			t.Fatalf("serve: bad repository name %q", name)
		}
		if err := os.Symlink(filepath.Join(r.dir, ".git"), filepath.Join(s.root, name+".git")); err != nil {
			t.Fatal(err)
		}
	}
	s.NewHostKey()
	s.Authorize(authorized...)
	config := strings.Join([]string{
		"HostKey " + filepath.Join(s.dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(s.dir, "authorized_keys"),
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin prohibit-password",
		"AllowUsers " + s.user,
		"PidFile none",
		"AcceptEnv GIT_PROTOCOL",
		"LogLevel VERBOSE",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(s.dir, "sshd_config"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(SSHD, "-t", "-f", filepath.Join(s.dir, "sshd_config")).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.running {
			c.Process.Kill() // a session the client left hanging
		}
		s.mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(c.(*net.TCPConn))
			}()
		}
	}()
	return s
}

// serve runs `sshd -i` on one connection.
func (s *SSHServer) serve(c *net.TCPConn) {
	defer c.Close()
	f, err := c.File()
	if err != nil {
		s.logf("connection: %v", err)
		return
	}
	defer f.Close()
	cmd := exec.Command(SSHD, "-i", "-e", "-f", filepath.Join(s.dir, "sshd_config"))
	cmd.Stdin, cmd.Stdout = f, f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	s.mu.Lock()
	s.conns++
	if s.closed {
		s.mu.Unlock()
		return
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.logf("start sshd -i: %v", err)
		return
	}
	s.running[cmd] = true
	s.mu.Unlock()
	err = cmd.Wait()
	s.mu.Lock()
	delete(s.running, cmd)
	s.mu.Unlock()
	s.logf("sshd -i: %v\n%s", err, stderr.Bytes())
}

func (s *SSHServer) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.WriteString(strings.TrimSpace(fmt.Sprintf(format, args...)) + "\n")
}

// URL is the ssh:// URL of repository name.
func (s *SSHServer) URL(name string) string {
	return "ssh://" + s.user + "@127.0.0.1:" + strconv.Itoa(s.port) + s.root + "/" + name + ".git"
}

// Host is the server as known_hosts names it: "[127.0.0.1]:port".
func (s *SSHServer) Host() string { return "[127.0.0.1]:" + strconv.Itoa(s.port) }

// HostKey is the server's current public host key ("ssh-ed25519 AAAA…").
func (s *SSHServer) HostKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hostKey
}

// Connections is how many connections the server has had.
func (s *SSHServer) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Log is what sshd said so far.
func (s *SSHServer) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// NewHostKey gives the server a new host key from the next connection on,
// as a server reinstalled (or an impostor) would have.
func (s *SSHServer) NewHostKey() {
	s.t.Helper()
	priv, pub := newKey(s.t)
	if err := os.WriteFile(filepath.Join(s.dir, "host_key"), priv, 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.hostKey = pub
	s.mu.Unlock()
}

// Authorize replaces the public keys (authorized_keys lines) the server
// lets in.
func (s *SSHServer) Authorize(keys ...string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, "authorized_keys"), []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// NewKey generates an ed25519 key pair: the private half in the OpenSSH
// format, the public half in authorized_keys form.
func NewKey(t testing.TB) (private []byte, public string) {
	t.Helper()
	return newKey(t)
}

func newKey(t testing.TB) ([]byte, string) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
}
