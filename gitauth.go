package berth

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// GitAuth is what berth presents to a Git server when it fetches an app's
// source: the app's deploy key for ssh URLs, its access token for http(s)
// URLs, and the ssh host keys the app trusts. The engine loads it from the
// store for every fetch and hands it to its Source; it never leaves the
// server. Its String, GoString and LogValue hide the secrets, so that a
// GitAuth printed or logged by mistake shows only which ones are set.
type GitAuth struct {
	// DeployKey is the private half of the app's deploy key in the OpenSSH
	// format (PEM); nil when the app has none.
	DeployKey []byte `json:"-"`
	// Username and Token are the app's access token for http(s) URLs; an
	// empty Username means DefaultGitUsername. Token "" means none.
	Username string `json:"-"`
	Token    string `json:"-"`
	// HostKeys are the ssh host keys the app trusts: pinned by a user or
	// trusted on first use. An ssh server whose host is listed here must
	// present one of its keys.
	HostKeys []HostKey `json:"-"`
}

// DefaultGitUsername is the user name sent with an access token when none
// is set: the name GitHub expects for its tokens; GitLab and Gitea accept
// any name with a token.
const DefaultGitUsername = "x-access-token"

// Secrets lists the values of a that must not appear in any output: the
// token, the Basic authorization it travels in, and the private key (and
// each of its lines).
func (a GitAuth) Secrets() []string {
	var out []string
	if a.Token != "" {
		out = append(out, a.Token, BasicAuth(a.Username, a.Token))
	}
	if len(a.DeployKey) > 0 {
		key := strings.TrimSpace(string(a.DeployKey))
		out = append(out, key)
		for _, line := range strings.Split(key, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
	}
	return out
}

// BasicAuth is the credentials of an HTTP Basic Authorization header for
// an access token: base64 of "user:token", user defaulting to
// DefaultGitUsername.
func BasicAuth(username, token string) string {
	if username == "" {
		username = DefaultGitUsername
	}
	return base64.StdEncoding.EncodeToString([]byte(username + ":" + token))
}

// String says which credentials are set, never their values.
func (a GitAuth) String() string {
	var set []string
	if len(a.DeployKey) > 0 {
		set = append(set, "deploy key")
	}
	if a.Token != "" {
		set = append(set, "access token")
	}
	if len(a.HostKeys) > 0 {
		set = append(set, fmt.Sprintf("%d host key(s)", len(a.HostKeys)))
	}
	if len(set) == 0 {
		return "git auth: none"
	}
	return "git auth: " + strings.Join(set, ", ")
}

// GoString is String, for %#v.
func (a GitAuth) GoString() string { return a.String() }

// Format prints String whatever the verb, so that no verb (%v, %+v, %#v,
// %s, %q, %x) reaches the fields.
func (a GitAuth) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, a.String()) }

// LogValue is String, for log/slog.
func (a GitAuth) LogValue() slog.Value { return slog.StringValue(a.String()) }

// FetchRequest asks a Source for the code of an app.
type FetchRequest struct {
	URL  string  // repository URL
	Ref  string  // branch, tag or commit
	Dir  string  // empty (or missing) directory to check out into
	Auth GitAuth // credentials and trusted host keys; zero = none
}

// FetchResult is what a fetch found.
type FetchResult struct {
	Commit string // full commit ID checked out
	// NewHostKeys are the ssh host keys of hosts that Auth.HostKeys did not
	// list, seen during this successful fetch and trusted on first use; the
	// caller pins them for the next fetches.
	NewHostKeys []HostKey
}

// DeployKey is the public half of an app's deploy key, as berth shows it:
// the line to add to the repository's deploy keys. The private half never
// leaves the store but to reach git.
type DeployKey struct {
	PublicKey   string    `json:"public_key"`  // "ssh-ed25519 AAAA… berth:<app>"
	Fingerprint string    `json:"fingerprint"` // "SHA256:…"
	CreatedAt   time.Time `json:"created_at"`
}

// GitCredentials says whether an app has an access token, never what it
// is.
type GitCredentials struct {
	Set       bool       `json:"set"`
	Username  string     `json:"username,omitempty"` // "" = DefaultGitUsername
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// HostKey is an ssh host key an app trusts.
type HostKey struct {
	// Host is the host as known_hosts names it: "github.com", or
	// "[git.example.com]:2222" for another port than 22.
	Host string `json:"host"`
	// Key is the public key in authorized_keys form, without a comment:
	// "ssh-ed25519 AAAA…".
	Key         string        `json:"key"`
	Fingerprint string        `json:"fingerprint"` // "SHA256:…"
	Source      HostKeySource `json:"source"`
	CreatedAt   time.Time     `json:"created_at"`
}

// HostKeySource says how a host key came to be trusted.
type HostKeySource string

// The host key sources.
const (
	HostKeyFirstUse HostKeySource = "first-use" // seen at the first successful fetch from the host
	HostKeyUser     HostKeySource = "user"      // given by a user (a known_hosts line)
)

// Line is k as a known_hosts line.
func (k HostKey) Line() string { return k.Host + " " + k.Key }

// Limits on access tokens and host keys.
const (
	MaxGitTokenLen = 4096
	MaxHostKeys    = 64
)

var gitUserRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._@+-]{0,127}$`)

// ValidGitToken checks an access token and the user name it goes with.
// The user name is optional; the token is required. Neither may hold
// white space or control characters (they travel in an HTTP header), and
// the user name no ':' (it ends the user name in Basic authorization).
func ValidGitToken(username, token string) error {
	if username != "" && !gitUserRE.MatchString(username) {
		return fmt.Errorf("git user name %q: use letters, digits and . _ @ + - (at most 128)", clip(username))
	}
	switch {
	case token == "":
		return fmt.Errorf("the access token is empty")
	case len(token) > MaxGitTokenLen:
		return fmt.Errorf("the access token is longer than %d bytes", MaxGitTokenLen)
	case strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar }) >= 0:
		return fmt.Errorf("the access token must not contain spaces or control characters")
	}
	return nil
}

// KeyFingerprint returns the SHA-256 fingerprint of a public key in
// authorized_keys form ("ssh-ed25519 AAAA… [comment]"), as ssh-keygen -l
// prints it, or "" when key is not of that form.
func KeyFingerprint(key string) string {
	f := strings.Fields(key)
	if len(f) < 2 {
		return ""
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
