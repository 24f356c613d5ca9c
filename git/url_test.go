package git

import (
	"bytes"
	"strings"
	"testing"

	"github.com/berthhq/berth"
)

func TestCheckURL(t *testing.T) {
	local := t.TempDir()
	tests := []struct {
		url        string
		allowLocal bool
		ok         bool
	}{
		{"https://github.com/berthhq/berth.git", false, true},
		{"https://github.com/berthhq/berth", false, true},
		{"http://127.0.0.1:8080/app.git", false, true},
		{"https://[::1]:8443/team/app.git", false, true},
		{"https://x-access-token:ghp_abc%2Fdef@github.com/org/repo.git", false, true},
		{"https://dev.azure.com/org/My%20Project/_git/repo", false, true},
		{"https://gitlab.example.com/group/sub/repo.git", false, true},
		{"ssh://git@github.com/berthhq/berth.git", false, true},
		{"ssh://git@host.example:2222/~user/repo.git", false, true},
		{"git@github.com:berthhq/berth.git", false, true},
		{"deploy@10.0.0.5:/srv/git/app.git", false, true},
		{local, true, true},

		{"", false, false},
		{local, false, false},
		{local + "/missing", true, false},
		{local + "/../x", true, false},
		{"relative/path", true, false},
		{"--upload-pack=touch /tmp/x", false, false},
		{"--upload-pack=touch${IFS}/tmp/x", true, false},
		{"-oProxyCommand=touch /tmp/x", false, false},
		{"ext::sh -c touch% /tmp/pwned", false, false},
		{"ext::sh${IFS}-c${IFS}touch%${IFS}/tmp/pwned", false, false},
		{"fd::17", false, false},
		{"file:///etc", true, false},
		{"file://" + local, true, false},
		{"git://github.com/x/y.git", false, false},
		{"ftp://host/x.git", false, false},
		{"HTTPS://github.com/x/y.git", false, false},
		{"https::https://github.com/x/y.git", false, false},
		{"ssh://-oProxyCommand=x/y", false, false},
		{"ssh://%2doProxyCommand=x/y", false, false},
		{"ssh://git@-oProxyCommand=x/y", false, false},
		{"ssh://-oProxyCommand=x@host/y", false, false},
		{"ssh://%2doProxyCommand=x@host/y", false, false},
		{"ssh://git:pw@host/y", false, false},
		{"git@-oProxyCommand=x:y", false, false},
		{"-oProxyCommand=x@host:y", false, false},
		{"git@host:--upload-pack=touch${IFS}/tmp/x", false, false},
		{"git@host:repo/-x", false, false},
		{"git@host::x", false, false},
		{"host:repo.git", false, false},
		{"https://host/$(touch x)", false, false},
		{"https://host/$(touch${IFS}x)", false, false},
		{"https://host/`id`", false, false},
		{"https://host/a;touch x", false, false},
		{"https://host/repo.git\n--upload-pack=touch /tmp/x", false, false},
		{"https://host/repo.git --upload-pack=touch", false, false},
		{"https://host/repo.git\t", false, false},
		{"https://host/repo\x00.git", false, false},
		{"https://host/%0a--upload-pack=x", false, false},
		{"https://host/%2d-upload-pack=x", false, false},
		{"https://host/a/../b", false, false},
		{"https://-host/x.git", false, false},
		{"https://host_name/x.git", false, false},
		{"https://host/x.git?service=1", false, false},
		{"https://host/x.git#frag", false, false},
		{"https://host:99999/x.git", false, false},
		{"https://host", false, false},
		{"https://host/", false, false},
		{"https:host/x", false, false},
		{"https://:pw@host/x", false, false},
		{"https://u:p%0a@host/x", false, false},
		{"https://[fe80::1%25eth0]/x", false, false},
		{"https://h\u00e9st/x", false, false},
		{"https://host/x\u2028y", false, false},
		{"https://host/" + strings.Repeat("a", MaxURL), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := CheckURL(tt.url, tt.allowLocal)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckURL(%q, %v) = %v, want ok=%v", tt.url, tt.allowLocal, err, tt.ok)
			}
			if err != nil {
				if !berth.IsKind(err, berth.Invalid) {
					t.Errorf("kind = %s, want invalid", berth.ErrorKind(err))
				}
				if msg := berth.ErrorMessage(err); strings.ContainsAny(msg, "\n\r\x00") {
					t.Errorf("message %q carries control characters", msg)
				}
			}
		})
	}
}

func TestCheckURLHidesPassword(t *testing.T) {
	for _, u := range []string{
		"https://user:hunter2@host/a;b",
		"https://user:hunter2@host/x.git\n",
		"https://user:hunter2@host/$(x)",
		"http://hunter2@host:0/x",
		"ssh://git:hunter2@host/x",
		"https://user:hun/ter2@host/x",
	} {
		err := CheckURL(u, false)
		if err == nil {
			t.Fatalf("CheckURL(%q) = nil, want an error", u)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "ter2") {
			t.Errorf("CheckURL(%q) = %q: shows the password", u, err)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://github.com/x/y.git", "https://github.com/x/y.git"},
		{"https://user:secret@github.com/x/y.git", "https://user:***@github.com/x/y.git"},
		{"https://user:@host/x", "https://user:***@host/x"},
		{"https://ghp_token@github.com/x/y.git", "https://***@github.com/x/y.git"},
		{"https://u:p@ss@host/x", "https://u:***@host/x"},
		{"https://u:p/ss@host/x", "https://u:***@host/x"},
		{"ssh://git@github.com/x/y.git", "ssh://git@github.com/x/y.git"},
		{"ssh://git:pw@host/x", "ssh://git:***@host/x"},
		{"git@github.com:x/y.git", "git@github.com:x/y.git"},
		{"/srv/git/app", "/srv/git/app"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactor(t *testing.T) {
	var out bytes.Buffer
	r := &redactor{w: &out, secrets: secrets("https://user:s3cr%2Fet@host/x.git")}
	// The secret arrives split across writes, escaped and unescaped, and in
	// a URL of its own.
	for _, chunk := range []string{"fatal: https://user:s3", "cr%2Fet@host/x.git\rprogress s3cr/et\n", "see http://a:other@b/c", " tail"} {
		if _, err := r.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	r.Flush()
	got := out.String()
	for _, secret := range []string{"s3cr", "other"} {
		if strings.Contains(got, secret) {
			t.Errorf("output %q shows %q", got, secret)
		}
	}
	if want := "fatal: https://user:***@host/x.git\rprogress ***\nsee http://a:***@b/c tail"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

// TestRepoPath: the forms one repository goes by reduce to one host and
// path; what is not a remote URL does not reduce.
func TestRepoPath(t *testing.T) {
	for _, c := range []struct {
		url, host, path string
	}{
		{"https://github.com/acme/hello.git", "github.com", "acme/hello"},
		{"https://github.com/acme/hello", "github.com", "acme/hello"},
		{"https://GitHub.COM/Acme/Hello.git/", "github.com", "acme/hello"},
		{"http://github.com/acme/hello/", "github.com", "acme/hello"},
		{"git@github.com:acme/hello.git", "github.com", "acme/hello"},
		{"github.com:acme/hello", "github.com", "acme/hello"},
		{"ssh://git@github.com/acme/hello.git", "github.com", "acme/hello"},
		{"ssh://git@gitea.example.com:2222/acme/hello.git", "gitea.example.com", "acme/hello"},
		{"git://github.com/acme/hello.git", "github.com", "acme/hello"},
		{"https://x-access-token:ghp_secret@github.com/acme/hello.git", "github.com", "acme/hello"},
		{"https://oauth2@gitlab.example.com:8443/group/sub/name.git", "gitlab.example.com", "group/sub/name"},
		{"https://example.com/gitlab/group/name.git", "example.com", "gitlab/group/name"},
		{"https://[::1]:8443/team/app.git", "::1", "team/app"},
		{"deploy@10.0.0.5:/srv/git/app.git", "10.0.0.5", "srv/git/app"},
		{"https://dev.azure.com/org/My%20Project/_git/repo", "dev.azure.com", "org/my project/_git/repo"},
		{"HTTPS://github.com./acme/hello", "github.com", "acme/hello"},
	} {
		host, path, ok := RepoPath(c.url)
		if !ok || host != c.host || path != c.path {
			t.Errorf("RepoPath(%q) = %q, %q, %v; want %q, %q", c.url, host, path, ok, c.host, c.path)
		}
		if strings.Contains(host+path, "secret") {
			t.Errorf("RepoPath(%q) keeps the credentials", c.url)
		}
	}
	for _, bad := range []string{"", "/srv/git/app.git", "relative/path", "file:///srv/git/app.git", "ext::sh -c x",
		"https://github.com/", "https://github.com/.git", "https:///acme/hello", "git@github.com:"} {
		if host, path, ok := RepoPath(bad); ok {
			t.Errorf("RepoPath(%q) = %q, %q: want not ok", bad, host, path)
		}
	}
}
