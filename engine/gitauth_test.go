package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/engine"
)

const (
	fakePrivate = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1saW5lLW9uZS0wMTIzNDU2Nzg5\nc2VjcmV0LWtleS1saW5lLXR3by0wMTIzNDU2Nzg5\n-----END OPENSSH PRIVATE KEY-----\n"
	fakePublic  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHB1YmxpYy1rZXktbWF0ZXJpYWwtZm9yLXRlc3RzIQ== berth:hello"
	fakeHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhvc3Qta2V5LW1hdGVyaWFsLWZvci10ZXN0cy0xMjM0"
	fakeToken   = "glpat-s3cretTokenValue0123"
)

// TestFetchGetsTheAppsCredentials: the engine hands the app's deploy key,
// token and trusted host keys to the Source, masks them in the
// deployment's log and error, and pins the host keys the fetch trusted on
// first use.
func TestFetchGetsTheAppsCredentials(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	if _, err := x.st.SetDeployKey(ctx, x.app.TeamID, x.app.ID, []byte(fakePrivate), fakePublic); err != nil {
		t.Fatal(err)
	}
	if _, err := x.st.SetGitToken(ctx, x.app.TeamID, x.app.ID, "oauth2", fakeToken); err != nil {
		t.Fatal(err)
	}
	pinned := berth.HostKey{Host: "git.example.com", Key: fakeHostKey, Source: berth.HostKeyUser}
	if err := x.st.SetHostKeys(ctx, x.app.TeamID, x.app.ID, []berth.HostKey{pinned}); err != nil {
		t.Fatal(err)
	}
	// A Source that prints every secret it was given (git never does):
	// the log must show none of them.
	x.f.Source.Output = "token " + fakeToken + " header " + berth.BasicAuth("oauth2", fakeToken) + "\n" + fakePrivate
	x.f.Source.NewHostKeys = []berth.HostKey{{Host: "[other.example.com]:2222", Key: fakeHostKey, Fingerprint: berth.KeyFingerprint(fakeHostKey), Source: berth.HostKeyFirstUse}}

	d := x.deploy(engine.DeployRequest{})
	if d.Status != berth.StatusLive {
		t.Fatalf("deployment %s: %s", d.Status, d.Error)
	}
	auths := x.f.Source.SourceAuths()
	if len(auths) != 1 {
		t.Fatalf("%d fetches", len(auths))
	}
	a := auths[0]
	if string(a.DeployKey) != fakePrivate || a.Token != fakeToken || a.Username != "oauth2" || len(a.HostKeys) != 1 || a.HostKeys[0].Key != fakeHostKey {
		t.Errorf("the Source got %v (user %q, %d host keys)", a, a.Username, len(a.HostKeys))
	}
	log := x.log(d)
	for _, secret := range []string{fakeToken, berth.BasicAuth("oauth2", fakeToken), "c2VjcmV0LWtleS1saW5lLW9uZS0wMTIzNDU2Nzg5", "c2VjcmV0LWtleS1saW5lLXR3by0wMTIzNDU2Nzg5"} {
		if strings.Contains(log, secret) {
			t.Errorf("the deployment log shows %q:\n%s", secret, log)
		}
	}
	if !strings.Contains(log, "token "+engine.Masked) {
		t.Errorf("the log does not show the masked token:\n%s", log)
	}
	if !strings.Contains(log, "trusting the ssh host key of [other.example.com]:2222 on first use: ssh-ed25519 "+berth.KeyFingerprint(fakeHostKey)) {
		t.Errorf("the log does not say which host key was trusted:\n%s", log)
	}
	keys, err := x.st.HostKeys(ctx, x.app.TeamID, x.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Host != "[other.example.com]:2222" || keys[0].Source != berth.HostKeyFirstUse || keys[1].Source != berth.HostKeyUser {
		t.Errorf("host keys after the fetch: %+v", keys)
	}

	// A failed fetch: the error is masked too, and nothing is pinned.
	x.f.Source.NewHostKeys = nil
	x.f.Source.Err = errors.New("refused token " + fakeToken)
	d = x.deploy(engine.DeployRequest{})
	if d.Status != berth.StatusFailed || strings.Contains(d.Error, fakeToken) || !strings.Contains(d.Error, engine.Masked) {
		t.Errorf("failed fetch: %s %q", d.Status, d.Error)
	}
	if strings.Contains(x.log(d), fakeToken) {
		t.Errorf("the failed deployment's log shows the token:\n%s", x.log(d))
	}
}

// TestFetchWithoutCredentials: an app with none gets a zero GitAuth.
func TestFetchWithoutCredentials(t *testing.T) {
	x := newFixture(t, nil)
	if d := x.deploy(engine.DeployRequest{}); d.Status != berth.StatusLive {
		t.Fatalf("deployment %s: %s", d.Status, d.Error)
	}
	auths := x.f.Source.SourceAuths()
	if len(auths) != 1 || auths[0].DeployKey != nil || auths[0].Token != "" || auths[0].HostKeys != nil {
		t.Errorf("auths %v", auths)
	}
}
