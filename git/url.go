package git

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/berthhq/berth"
)

// MaxURL is the longest repository URL accepted.
const MaxURL = 1024

var (
	hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
	userRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$`)
	// pathRE is the conservative character set allowed in a repository path
	// as written (percent-escapes included).
	pathRE = regexp.MustCompile(`^[A-Za-z0-9._~/%+@:=,-]*$`)
	// scpRE matches the scp-like syntax user@host:path.
	scpRE = regexp.MustCompile(`^([^@:/\[\]]+)@([^@:/\[\]]+|\[[0-9A-Fa-f:.]+\]):(.+)$`)
)

// CheckURL reports whether url is an acceptable repository location:
// https://, http:// and ssh:// URLs and the scp-like user@host:path, with a
// DNS name or IP address as host and no part that could be taken for a git
// or ssh option; and, only when allowLocal is set, the absolute path of an
// existing directory. Other transports (ext::, fd::, file://, …) are
// refused. The error is a *berth.Error of kind Invalid whose message is safe
// to show to a client: it never contains a password from the URL.
func CheckURL(url string, allowLocal bool) error {
	const op = "check git url"
	bad := func(why string) error {
		return berth.E(op, berth.Invalid, "git URL %q %s", clip(Redact(url)), why)
	}
	switch {
	case url == "":
		return berth.E(op, berth.Invalid, "git URL is empty")
	case len(url) > MaxURL:
		return bad("is longer than " + strconv.Itoa(MaxURL) + " characters")
	case !utf8.ValidString(url) || strings.IndexFunc(url, isSpaceOrControl) >= 0:
		return bad("must not contain spaces or control characters")
	case strings.HasPrefix(url, "-"):
		return bad("must not start with '-'")
	case strings.HasPrefix(url, "/"):
		if !allowLocal {
			return bad("is a local path; local repositories are not allowed on this server")
		}
		return checkLocal(url, bad)
	}
	if i := strings.Index(url, "://"); i >= 0 {
		switch url[:i] {
		case "https", "http", "ssh":
			return checkSchemeURL(url, url[:i], bad)
		}
		return bad("uses an unsupported transport; use https://, http://, ssh:// or user@host:path")
	}
	m := scpRE.FindStringSubmatch(url)
	if m == nil {
		return bad("is not a supported repository URL; use https://, http://, ssh:// or user@host:path")
	}
	user, host, path := m[1], strings.Trim(m[2], "[]"), m[3]
	if !userRE.MatchString(user) {
		return bad("has an invalid user name")
	}
	if !validHost(host) {
		return bad("has an invalid host")
	}
	if strings.HasPrefix(path, ":") {
		return bad("has a path starting with ':'")
	}
	return checkPath(path, path, bad)
}

func checkSchemeURL(raw, scheme string, bad func(string) error) error {
	if strings.ContainsAny(raw, "?#") {
		return bad("must not have a query or fragment")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return bad("is not a valid URL")
	}
	if !validHost(u.Hostname()) {
		return bad("has an invalid host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("has an invalid port")
		}
	}
	if u.User != nil {
		name := u.User.Username()
		pass, hasPass := u.User.Password()
		switch {
		case name == "" || strings.HasPrefix(name, "-") || strings.IndexFunc(name, isSpaceOrControl) >= 0:
			return bad("has an invalid user name")
		case scheme == "ssh" && !userRE.MatchString(name):
			return bad("has an invalid user name")
		case scheme == "ssh" && hasPass:
			return bad("must not carry a password; ssh uses keys")
		case strings.IndexFunc(pass, unicode.IsControl) >= 0:
			return bad("has an invalid password")
		}
	}
	rest := raw[len(scheme)+3:]
	return checkPath(rest[strings.Index(rest, "/")+1:], u.Path, bad)
}

// checkPath checks a repository path: raw as written, decoded as git will
// see it after unescaping.
func checkPath(raw, decoded string, bad func(string) error) error {
	if strings.Trim(decoded, "/") == "" {
		return bad("has no repository path")
	}
	if !pathRE.MatchString(raw) {
		return bad("has characters not allowed in a repository path")
	}
	if strings.IndexFunc(decoded, unicode.IsControl) >= 0 {
		return bad("must not contain control characters")
	}
	for _, part := range strings.Split(decoded, "/") {
		if strings.HasPrefix(part, "-") {
			return bad("has a path part starting with '-'")
		}
		if part == ".." {
			return bad("must not contain '..'")
		}
	}
	return nil
}

func checkLocal(path string, bad func(string) error) error {
	if filepath.Clean(path) != path {
		return bad("is not a clean absolute path")
	}
	for _, part := range strings.Split(path, "/") {
		if strings.HasPrefix(part, "-") {
			return bad("has a path part starting with '-'")
		}
	}
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		return bad("is not an existing directory")
	}
	return nil
}

// isLocal reports whether a checked URL is a local path.
func isLocal(raw string) bool { return strings.HasPrefix(raw, "/") }

func validHost(h string) bool {
	if ip := net.ParseIP(h); ip != nil {
		return !strings.Contains(h, "%")
	}
	return len(h) <= 253 && hostRE.MatchString(h)
}

func isSpaceOrControl(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:97] + "..."
	}
	return s
}

// Redact returns url with its credentials hidden, for messages and logs: the
// password of a URL's user information becomes "***"
// (https://user:***@host/…), and so does a user name alone in an http(s)
// URL, which is usually an access token (https://***@host/…). Other URLs are
// returned unchanged.
func Redact(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	// Take the last '@' anywhere, not only in the authority: a malformed URL
	// may carry a '/' in its password, and hiding too much is harmless.
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return url
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	switch {
	case hasPass:
		user += ":***"
	case scheme != "ssh":
		user = "***"
	default:
		return url
	}
	return scheme + "://" + user + rest[at:]
}

// secrets returns the strings of url that must not appear in any output:
// its password, or the user name of an http(s) URL without one, as written
// and unescaped.
func secrets(raw string) []string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return nil
	}
	var s string
	if _, pass, hasPass := strings.Cut(rest[:at], ":"); hasPass {
		s = pass
	} else if scheme != "ssh" {
		s = rest[:at]
	}
	if s == "" {
		return nil
	}
	out := []string{s}
	if dec, err := url.PathUnescape(s); err == nil && dec != s && dec != "" {
		out = append(out, dec)
	}
	return out
}

// userinfoRE finds credentials in any URL that git prints.
var userinfoRE = regexp.MustCompile(`(://[^/\s:@]*):[^\s@/]*@`)

// redact hides secrets and any URL password in b.
func redact(b []byte, secrets []string) []byte {
	for _, s := range secrets {
		b = bytes.ReplaceAll(b, []byte(s), []byte("***"))
	}
	return userinfoRE.ReplaceAll(b, []byte("$1:***@"))
}

// redactor passes git's output to w line by line (progress lines end in
// '\r'), with credentials hidden. Errors from w are ignored: progress is
// best effort and must not fail a fetch.
type redactor struct {
	w       io.Writer
	secrets []string
	buf     []byte
}

func (r *redactor) Write(p []byte) (int, error) {
	r.buf = append(r.buf, p...)
	i := bytes.LastIndexAny(r.buf, "\r\n")
	if i < 0 {
		if len(r.buf) > 64<<10 {
			r.Flush()
		}
		return len(p), nil
	}
	_, _ = r.w.Write(redact(r.buf[:i+1], r.secrets))
	r.buf = append(r.buf[:0], r.buf[i+1:]...)
	return len(p), nil
}

// Flush writes what is left.
func (r *redactor) Flush() {
	if len(r.buf) > 0 {
		_, _ = r.w.Write(redact(r.buf, r.secrets))
		r.buf = r.buf[:0]
	}
}

// scpLooseRE matches the scp-like syntax [user@]host:path as providers
// write it in payloads (git@github.com:owner/repo.git).
var scpLooseRE = regexp.MustCompile(`^(?:[^@:/\[\]]+@)?([^@:/\[\]]+|\[[0-9A-Fa-f:.]+\]):(.+)$`)

// RepoPath reduces a repository URL to what names the repository, so that
// the forms one repository goes by compare equal: the host, lower-cased,
// without user, password or port; and the path without the slashes at its
// ends or the ".git" suffix, lower-cased (GitHub, GitLab, Gitea and
// Bitbucket name repositories without regard to case). It understands
// https://, http://, ssh:// and git:// URLs and the scp-like
// [user@]host:path; ok is false for anything else, a local path included.
// The result holds no credential: it may be shown.
func RepoPath(raw string) (host, path string, ok bool) {
	raw = strings.TrimSpace(raw)
	if scheme, _, found := strings.Cut(raw, "://"); found {
		switch strings.ToLower(scheme) {
		case "https", "http", "ssh", "git", "git+ssh", "ssh+git":
		default:
			return "", "", false
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return "", "", false
		}
		host, path = u.Hostname(), u.Path
	} else if m := scpLooseRE.FindStringSubmatch(raw); m != nil && !strings.HasPrefix(m[2], ":") {
		host, path = strings.Trim(m[1], "[]"), m[2]
	} else {
		return "", "", false
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	path = strings.Trim(path, "/")
	path = strings.Trim(strings.TrimSuffix(path, ".git"), "/")
	if !validHost(host) || path == "" {
		return "", "", false
	}
	return host, strings.ToLower(path), true
}
