package git

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net/netip"
	neturl "net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/berthhq/berth"
)

// NewDeployKey generates an ed25519 key pair for an app's deploy key: the
// private half in the OpenSSH format (PEM), to be sealed in the store, and
// the public half as an authorized_keys line ending in comment
// ("ssh-ed25519 AAAA… berth:web"), to be added to the repository.
func NewDeployKey(comment string) (private []byte, public string, err error) {
	if strings.ContainsFunc(comment, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, "", fmt.Errorf("deploy key comment %q has spaces or control characters", comment)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", fmt.Errorf("generate deploy key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, "", fmt.Errorf("encode deploy key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", fmt.Errorf("encode deploy key: %w", err)
	}
	public = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if comment != "" {
		public += " " + comment
	}
	return pem.EncodeToMemory(block), public, nil
}

// hostPatternRE is what a host field of a known_hosts line may hold: host
// names, addresses, "[host]:port", and the patterns * ? and ! of ssh.
var hostPatternRE = regexp.MustCompile(`^!?(\[[A-Za-z0-9.:*?-]+\]:[0-9]{1,5}|[A-Za-z0-9.:*?-]+)$`)

// ParseHostKeys reads host keys a user gives: known_hosts lines ("host
// key-type base64", as ssh-keyscan prints them; several hosts separated by
// commas), one per line; blank lines and '#' comments are skipped. Hashed
// host names and markers (@cert-authority, @revoked) are refused. The keys
// come back normalized, with source HostKeyUser and time now.
func ParseHostKeys(text string, now time.Time) ([]berth.HostKey, error) {
	var out []berth.HostKey
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := parseHostKey(line)
		if err != nil {
			return nil, fmt.Errorf("host keys, line %d: %w", n, err)
		}
		if seen[k.Line()] {
			continue
		}
		seen[k.Line()] = true
		k.Source, k.CreatedAt = berth.HostKeyUser, now
		out = append(out, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("host keys: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no host key given: write known_hosts lines such as \"git.example.com ssh-ed25519 AAAA…\" (ssh-keyscan prints them)")
	}
	if len(out) > berth.MaxHostKeys {
		return nil, fmt.Errorf("at most %d host keys", berth.MaxHostKeys)
	}
	return out, nil
}

// parseHostKey reads one known_hosts line into a normalized HostKey.
func parseHostKey(line string) (berth.HostKey, error) {
	if strings.ContainsAny(line, "\r\n\x00") {
		return berth.HostKey{}, fmt.Errorf("a host key line must be one line")
	}
	marker, hosts, pub, _, _, err := ssh.ParseKnownHosts([]byte(line + "\n"))
	if err != nil {
		return berth.HostKey{}, fmt.Errorf("not a known_hosts line (\"host key-type base64\"): %s", clip(line))
	}
	if marker != "" {
		return berth.HostKey{}, fmt.Errorf("markers such as @%s are not supported", marker)
	}
	for _, h := range hosts {
		if strings.HasPrefix(h, "|") {
			return berth.HostKey{}, fmt.Errorf("hashed host names are not supported: write the host name")
		}
		if !hostPatternRE.MatchString(h) {
			return berth.HostKey{}, fmt.Errorf("host %q: use a host name, an address or [host]:port", clip(h))
		}
	}
	if len(hosts) == 0 {
		return berth.HostKey{}, fmt.Errorf("the line names no host")
	}
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	return berth.HostKey{Host: strings.Join(hosts, ","), Key: key, Fingerprint: ssh.FingerprintSHA256(pub)}, nil
}

// safePathRE is what a path berth made may look like to reach the shell
// that runs GIT_SSH_COMMAND, or ssh's configuration.
var safePathRE = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)

// sshSetup makes ssh use only what berth gives it, through a configuration
// file in the fetch's private temporary directory (r.home, mode 0700): the
// deploy key (a 0600 file) or no key at all (never the server user's own
// keys or agent), the app's trusted host keys, batch mode, and trust on
// first use for hosts the app does not know yet. The directory goes with
// r.close.
//
// git runs GIT_SSH_COMMAND through a shell, so the only value put there is
// the path of that configuration file, which berth made: it is checked
// against a plain character set and single-quoted. No user value (URL,
// host, key) ever reaches the command line; they reach ssh as its argv
// (from git) and as the content of files.
func (r *runner) sshSetup(auth berth.GitAuth, sshURL bool) error {
	if !safePathRE.MatchString(r.home) {
		return fmt.Errorf("temporary directory %q: ssh needs a plain path; set TMPDIR to one", r.home)
	}
	var known strings.Builder
	for _, k := range auth.HostKeys {
		if _, err := parseHostKey(k.Line()); err != nil {
			return fmt.Errorf("trusted host key of %s: %w", clip(k.Host), err)
		}
		known.WriteString(k.Line() + "\n")
	}
	knownFile := filepath.Join(r.home, "known_hosts")
	if err := writePrivate(knownFile, []byte(known.String())); err != nil {
		return err
	}
	identity := "none"
	if len(auth.DeployKey) > 0 && sshURL {
		identity = filepath.Join(r.home, "deploy_key")
		key := auth.DeployKey
		if key[len(key)-1] != '\n' {
			key = append(key[:len(key):len(key)], '\n')
		}
		if err := writePrivate(identity, key); err != nil {
			return err
		}
	}
	config := strings.Join([]string{
		"Host *",
		"BatchMode yes",
		"IdentitiesOnly yes",
		"IdentityFile " + identity,
		"IdentityAgent none",
		"UserKnownHostsFile " + knownFile,
		"GlobalKnownHostsFile /dev/null",
		"StrictHostKeyChecking accept-new",
		"HashKnownHosts no",
		"CheckHostIP no",
		"UpdateHostKeys no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"GSSAPIAuthentication no",
		"ConnectTimeout 30",
		"ServerAliveInterval 15",
		"LogLevel ERROR",
		"",
	}, "\n")
	configFile := filepath.Join(r.home, "ssh_config")
	if err := writePrivate(configFile, []byte(config)); err != nil {
		return err
	}
	r.ssh, r.hasKey = sshURL, identity != "none"
	r.known = auth.HostKeys
	r.knownFile = knownFile
	r.env = append(r.env, "GIT_SSH_COMMAND=ssh -F '"+configFile+"'", "GIT_SSH_VARIANT=ssh")
	return nil
}

// writePrivate writes a new file only its owner can read.
func writePrivate(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

// newHostKeys returns the host keys ssh trusted on first use during this
// run: the lines of the known_hosts file that the app did not give.
func (r *runner) newHostKeys(now time.Time) []berth.HostKey {
	if r.knownFile == "" {
		return nil
	}
	b, err := os.ReadFile(r.knownFile)
	if err != nil {
		return nil
	}
	given := map[string]bool{}
	for _, k := range r.known {
		given[k.Line()] = true
	}
	var out []berth.HostKey
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || given[line] {
			continue
		}
		k, err := parseHostKey(line)
		if err != nil || given[k.Line()] {
			continue
		}
		given[k.Line()] = true
		k.Source, k.CreatedAt = berth.HostKeyFirstUse, now
		out = append(out, k)
	}
	return out
}

// tokenSetup hands the access token to git in its environment, as an
// http.extraHeader given through GIT_CONFIG_COUNT/KEY/VALUE: never in argv
// (which every local user can read in ps) and never in the repository's
// configuration. The token goes only to the host of the URL: redirects are
// not followed. It refuses a URL that already carries credentials, and
// plain http unless every address of the host is a loopback address and the
// server allows private egress (a test server or a git server on the same
// machine): anywhere else the token would cross the network in clear.
func (f *Fetcher) tokenSetup(r *runner, rawURL string, addrs []netip.Addr, auth berth.GitAuth) error {
	const op = "fetch source"
	if err := berth.ValidGitToken(auth.Username, auth.Token); err != nil {
		return berth.E(op, berth.Invalid, "the app's access token: %v", err)
	}
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return berth.E(op, berth.Invalid, "git URL %q is not a valid URL", clip(Redact(rawURL)))
	}
	if u.User != nil {
		return berth.E(op, berth.Invalid, "git URL %s carries credentials and the app has an access token: remove one of them", clip(Redact(rawURL)))
	}
	if u.Scheme == "http" {
		loopback := f.Egress.AllowPrivate && len(addrs) > 0
		for _, a := range addrs {
			loopback = loopback && a.Unmap().IsLoopback()
		}
		if !loopback {
			return berth.E(op, berth.Invalid, "refusing to send the app's access token over plain http to %s: use an https:// URL", clip(u.Host))
		}
	}
	r.env = append(r.env,
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic "+berth.BasicAuth(auth.Username, auth.Token),
	)
	r.pin = append(r.pin, "-c", "http.followRedirects=false")
	r.token = true
	return nil
}

// isSSH reports whether a checked URL reaches its repository over ssh.
func isSSH(raw string) bool {
	if strings.HasPrefix(raw, "ssh://") {
		return true
	}
	return !strings.Contains(raw, "://") && !isLocal(raw)
}

// hostOf returns the host (and port, when one is given) of a checked URL,
// for messages.
func hostOf(raw string) string {
	if m := scpRE.FindStringSubmatch(raw); m != nil && !strings.Contains(raw, "://") {
		return m[2]
	}
	if u, err := neturl.Parse(raw); err == nil && u.Host != "" {
		return u.Host
	}
	return "the git server"
}

// changedKeyRE finds the key ssh was offered in its "host identification
// has changed" warning.
var changedKeyRE = regexp.MustCompile(`The fingerprint for the (\S+) key sent by the remote host is\s+(SHA256:[A-Za-z0-9+/=]+)`)

// authError turns git's refusals that are about credentials and host keys
// into a message that says what to do; ok is false for other failures.
func (r *runner) authError(op, shown, stderr string, err error) (error, bool) {
	host := hostOf(shown)
	switch {
	case has(stderr, "REMOTE HOST IDENTIFICATION HAS CHANGED", "has changed and you have requested strict checking"):
		offered := ""
		if m := changedKeyRE.FindStringSubmatch(stderr); m != nil {
			offered = " (it offered the " + m[1] + " key " + m[2] + ")"
		}
		return &berth.Error{Op: op, Kind: berth.Invalid, Err: err, Msg: "host key of " + host + " changed: the server's key is not the one this app trusts" +
			offered + "; if the server's key really changed, reset the app's host keys or set the new one (berth apps host-keys)"}, true
	case has(stderr, "Host key verification failed"):
		return &berth.Error{Op: op, Kind: berth.Invalid, Err: err, Msg: "host key of " + host + " could not be verified against the keys this app trusts (berth apps host-keys)"}, true
	case r.ssh && has(stderr, "Permission denied (publickey"):
		hint := "the app has no deploy key: create one (berth apps deploy-key APP) and add its public key to the repository's deploy keys"
		if r.hasKey {
			hint = "add the app's deploy key (berth apps deploy-key APP shows it) to the repository's deploy keys, with read access"
		}
		return &berth.Error{Op: op, Kind: berth.Invalid, Err: err, Msg: shown + ": the server refused the ssh key (permission denied); " + hint}, true
	case !r.ssh && has(stderr, "could not read Username", "could not read Password", "Authentication failed", "returned error: 401", "returned error: 403"):
		msg := shown + ": the server asks for credentials: set an access token for the app (berth apps git-credentials set APP)"
		if r.token {
			msg = shown + ": the server refused the app's access token: check it and its user name, and that it may read the repository (berth apps git-credentials set APP)"
		}
		return &berth.Error{Op: op, Kind: berth.Invalid, Err: err, Msg: msg}, true
	}
	return nil, false
}
