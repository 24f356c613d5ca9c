package store

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

// Keys shaped like the real ones: the store only stores them, package git
// makes and parses them.
const (
	testPrivate = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACBwcml2YXRlLWtleS1tYXRlcmlhbC1mb3ItdGVzdHM=\n-----END OPENSSH PRIVATE KEY-----\n"
	testPublic  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHB1YmxpYy1rZXktbWF0ZXJpYWwtZm9yLXRlc3RzIQ== berth:web"
	testHostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGhvc3Qta2V5LW1hdGVyaWFsLWZvci10ZXN0cy0xMjM0"
	testToken   = "ghp_s3cretAccessTokenValue0123456789"
)

// rawColumn reads one column of an app's row as bytes.
func rawColumn(t *testing.T, s *Store, table, column, appID string) []byte {
	t.Helper()
	var b []byte
	must(t, s.reader().row(ctxT(t), `SELECT `+column+` FROM `+table+` WHERE app_id = ?`, appID).Scan(&b))
	return b
}

func TestGitCredentialsSealed(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		g := newFixture(t, s, "other")

		// Nothing set yet.
		if _, err := s.DeployKey(ctx, f.team.ID, f.app.ID); !berth.IsKind(err, berth.NotFound) || !strings.Contains(berth.ErrorMessage(err), "no deploy key") {
			t.Errorf("deploy key before one is made: %v", err)
		}
		if c, err := s.GitCredentials(ctx, f.team.ID, f.app.ID); err != nil || c.Set || c.UpdatedAt != nil {
			t.Errorf("credentials before any: %+v, %v", c, err)
		}
		if a, err := s.GitAuth(ctx, f.team.ID, f.app.ID); err != nil || a.DeployKey != nil || a.Token != "" || a.HostKeys != nil {
			t.Errorf("git auth before any: %v, %v", a, err)
		}

		k, err := s.SetDeployKey(ctx, f.team.ID, f.app.ID, []byte(testPrivate), testPublic)
		must(t, err)
		if k.PublicKey != testPublic || !strings.HasPrefix(k.Fingerprint, "SHA256:") {
			t.Errorf("set deploy key: %+v", k)
		}
		c, err := s.SetGitToken(ctx, f.team.ID, f.app.ID, "x-access-token", testToken)
		must(t, err)
		if !c.Set || c.Username != "x-access-token" || c.UpdatedAt == nil {
			t.Errorf("set token: %+v", c)
		}

		// At rest: sealed, neither the key nor the token in clear.
		raw := rawColumn(t, s, "deploy_keys", "private_key", f.app.ID)
		if bytes.Contains(raw, []byte("OPENSSH")) || bytes.Contains(raw, []byte("b3BlbnNzaC1rZXktdjEAAAAABG5vbmU")) || raw[0] != sealV1 {
			t.Errorf("deploy key stored in clear: %q", raw)
		}
		if raw := rawColumn(t, s, "git_tokens", "token", f.app.ID); bytes.Contains(raw, []byte(testToken)) || raw[0] != sealV1 {
			t.Errorf("token stored in clear: %q", raw)
		}
		// Bound to the app: moved to another app's row, it does not open.
		_, err = s.writer().exec(ctx, `INSERT INTO git_tokens (app_id, team_id, username, token, updated_at) VALUES (?, ?, '', ?, ?)`,
			g.app.ID, g.team.ID, rawColumn(t, s, "git_tokens", "token", f.app.ID), time.Now())
		must(t, err)
		if _, err := s.GitAuth(ctx, g.team.ID, g.app.ID); !berth.IsKind(err, berth.Internal) || strings.Contains(err.Error(), testToken) {
			t.Errorf("a token copied to another app: %v, want it not to open", err)
		}
		must(t, s.DeleteGitToken(ctx, g.team.ID, g.app.ID))

		a, err := s.GitAuth(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if string(a.DeployKey) != testPrivate || a.Token != testToken || a.Username != "x-access-token" {
			t.Errorf("git auth: key %q, user %q, token %q", a.DeployKey, a.Username, a.Token)
		}

		// Another team sees none of it, as if the app did not exist.
		if _, err := s.DeployKey(ctx, g.team.ID, f.app.ID); !berth.IsKind(err, berth.NotFound) || !strings.Contains(berth.ErrorMessage(err), "app") {
			t.Errorf("other team's deploy key: %v", err)
		}
		if _, err := s.GitAuth(ctx, g.team.ID, f.app.ID); !berth.IsKind(err, berth.NotFound) {
			t.Errorf("other team's git auth: %v", err)
		}
		if _, err := s.SetDeployKey(ctx, g.team.ID, f.app.ID, []byte("x"), "y"); !berth.IsKind(err, berth.NotFound) {
			t.Errorf("other team sets the key: %v", err)
		}
		if _, err := s.SetGitToken(ctx, g.team.ID, f.app.ID, "", "tok"); !berth.IsKind(err, berth.NotFound) {
			t.Errorf("other team sets the token: %v", err)
		}
		wantKind(t, s.DeleteDeployKey(ctx, g.team.ID, f.app.ID), berth.NotFound)
		wantKind(t, s.DeleteGitToken(ctx, g.team.ID, f.app.ID), berth.NotFound)
		if a, err := s.GitAuth(ctx, f.team.ID, f.app.ID); err != nil || a.Token != testToken || len(a.DeployKey) == 0 {
			t.Errorf("after the other team's attempts: %v, %v", a, err)
		}

		// Bad tokens are refused and change nothing.
		for _, bad := range [][2]string{{"", ""}, {"", "has space"}, {"a:b", "tok"}, {"", "line\nbreak"}, {"", strings.Repeat("t", berth.MaxGitTokenLen+1)}} {
			if _, err := s.SetGitToken(ctx, f.team.ID, f.app.ID, bad[0], bad[1]); !berth.IsKind(err, berth.Invalid) {
				t.Errorf("token %q/%q: %v, want Invalid", bad[0], clipStr(bad[1]), err)
			}
		}

		// Rotation replaces the key: the old one is gone.
		const rotated = "-----BEGIN OPENSSH PRIVATE KEY-----\nrotated-key-material-0123456789abcdef\n-----END OPENSSH PRIVATE KEY-----\n"
		_, err = s.SetDeployKey(ctx, f.team.ID, f.app.ID, []byte(rotated), strings.Replace(testPublic, "AAAAIH", "AAAAIG", 1))
		must(t, err)
		a, err = s.GitAuth(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if string(a.DeployKey) != rotated {
			t.Errorf("after rotation the key is %q", a.DeployKey)
		}
		var n int
		must(t, s.reader().row(ctx, `SELECT COUNT(*) FROM deploy_keys`).Scan(&n))
		if n != 1 {
			t.Errorf("%d deploy keys stored after rotation, want 1", n)
		}

		// Replacing the token keeps one; deleting removes it.
		_, err = s.SetGitToken(ctx, f.team.ID, f.app.ID, "", "second-token-value")
		must(t, err)
		if c, err := s.GitCredentials(ctx, f.team.ID, f.app.ID); err != nil || !c.Set || c.Username != "" {
			t.Errorf("replaced token: %+v, %v", c, err)
		}
		must(t, s.DeleteGitToken(ctx, f.team.ID, f.app.ID))
		must(t, s.DeleteDeployKey(ctx, f.team.ID, f.app.ID))
		if err := s.DeleteDeployKey(ctx, f.team.ID, f.app.ID); !berth.IsKind(err, berth.NotFound) || !strings.Contains(berth.ErrorMessage(err), "no deploy key") {
			t.Errorf("second delete: %v", err)
		}
		if a, err := s.GitAuth(ctx, f.team.ID, f.app.ID); err != nil || a.DeployKey != nil || a.Token != "" {
			t.Errorf("after delete: %v, %v", a, err)
		}

		// Deleting the app deletes its credentials.
		_, err = s.SetDeployKey(ctx, f.team.ID, f.app.ID, []byte(testPrivate), testPublic)
		must(t, err)
		_, err = s.SetGitToken(ctx, f.team.ID, f.app.ID, "", testToken)
		must(t, err)
		must(t, s.AddHostKeys(ctx, f.team.ID, f.app.ID, []berth.HostKey{{Host: "git.example.com", Key: testHostKey, Source: berth.HostKeyFirstUse}}))
		must(t, s.DeleteApp(ctx, f.team.ID, f.app.ID))
		for _, table := range []string{"deploy_keys", "git_tokens", "git_host_keys"} {
			must(t, s.reader().row(ctx, `SELECT COUNT(*) FROM `+table+` WHERE app_id = ?`, f.app.ID).Scan(&n))
			if n != 0 {
				t.Errorf("%d rows left in %s after the app was deleted", n, table)
			}
		}
	})
}

func TestHostKeys(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		g := newFixture(t, s, "other")
		if keys, err := s.HostKeys(ctx, f.team.ID, f.app.ID); err != nil || len(keys) != 0 {
			t.Fatalf("host keys of a new app: %v, %v", keys, err)
		}
		first := berth.HostKey{Host: "[git.example.com]:2222", Key: testHostKey, Source: berth.HostKeyFirstUse, CreatedAt: t0}
		must(t, s.AddHostKeys(ctx, f.team.ID, f.app.ID, []berth.HostKey{first}))
		// Trusting the same key again changes nothing.
		must(t, s.AddHostKeys(ctx, f.team.ID, f.app.ID, []berth.HostKey{first}))
		keys, err := s.HostKeys(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if len(keys) != 1 || keys[0].Host != first.Host || keys[0].Key != testHostKey || keys[0].Source != berth.HostKeyFirstUse ||
			keys[0].Fingerprint != berth.KeyFingerprint(testHostKey) || !keys[0].CreatedAt.Equal(utc(t0)) {
			t.Errorf("host keys: %+v", keys)
		}
		if a, err := s.GitAuth(ctx, f.team.ID, f.app.ID); err != nil || len(a.HostKeys) != 1 {
			t.Errorf("git auth's host keys: %v, %v", a, err)
		}
		// Another team can neither read nor change them.
		if _, err := s.HostKeys(ctx, g.team.ID, f.app.ID); !berth.IsKind(err, berth.NotFound) {
			t.Errorf("other team reads: %v", err)
		}
		wantKind(t, s.SetHostKeys(ctx, g.team.ID, f.app.ID, nil), berth.NotFound)
		wantKind(t, s.AddHostKeys(ctx, g.team.ID, f.app.ID, []berth.HostKey{first}), berth.NotFound)

		// A user's keys replace them all; none resets to trust on first use.
		user := berth.HostKey{Host: "git.example.com,10.0.0.1", Key: testPublic[:strings.LastIndex(testPublic, " ")], Source: berth.HostKeyUser}
		must(t, s.SetHostKeys(ctx, f.team.ID, f.app.ID, []berth.HostKey{user}))
		if keys, err := s.HostKeys(ctx, f.team.ID, f.app.ID); err != nil || len(keys) != 1 || keys[0].Source != berth.HostKeyUser || keys[0].Host != user.Host {
			t.Errorf("after set: %+v, %v", keys, err)
		}
		must(t, s.SetHostKeys(ctx, f.team.ID, f.app.ID, nil))
		if keys, err := s.HostKeys(ctx, f.team.ID, f.app.ID); err != nil || len(keys) != 0 {
			t.Errorf("after reset: %+v, %v", keys, err)
		}
		// Junk is refused, and a refused set changes nothing.
		must(t, s.SetHostKeys(ctx, f.team.ID, f.app.ID, []berth.HostKey{user}))
		wantKind(t, s.SetHostKeys(ctx, f.team.ID, f.app.ID, []berth.HostKey{first, {Host: "h", Key: "not a key", Source: berth.HostKeyUser}}), berth.Invalid)
		wantKind(t, s.AddHostKeys(ctx, f.team.ID, f.app.ID, []berth.HostKey{{Host: "h", Key: testHostKey, Source: "whatever"}}), berth.Invalid)
		if keys, err := s.HostKeys(ctx, f.team.ID, f.app.ID); err != nil || len(keys) != 1 || keys[0].Host != user.Host {
			t.Errorf("after refused changes: %+v, %v", keys, err)
		}
		too := make([]berth.HostKey, berth.MaxHostKeys+1)
		for i := range too {
			too[i] = berth.HostKey{Host: "h" + strings.Repeat("x", i), Key: testHostKey, Source: berth.HostKeyUser}
		}
		wantKind(t, s.SetHostKeys(ctx, f.team.ID, f.app.ID, too), berth.Invalid)
		wantKind(t, s.AddHostKeys(ctx, f.team.ID, f.app.ID, too), berth.Invalid)
		if keys, err := s.HostKeys(ctx, f.team.ID, f.app.ID); err != nil || len(keys) != 1 {
			t.Errorf("after too many: %d keys, %v", len(keys), err)
		}
	})
}

// TestRotateKeyReseals: berth server rotate-key re-seals deploy keys and
// access tokens, which open with the new key afterwards.
func TestRotateKeyResealsGitCredentials(t *testing.T) {
	newKey := bytes.Repeat([]byte{43}, 32)
	dialects(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		s := openT(t, dsn, testKey)
		f := newFixture(t, s, "acme")
		_, err := s.SetDeployKey(ctx, f.team.ID, f.app.ID, []byte(testPrivate), testPublic)
		must(t, err)
		_, err = s.SetGitToken(ctx, f.team.ID, f.app.ID, "oauth2", testToken)
		must(t, err)
		beforeKey := rawColumn(t, s, "deploy_keys", "private_key", f.app.ID)
		beforeToken := rawColumn(t, s, "git_tokens", "token", f.app.ID)
		n, err := s.RotateKey(ctx, newKey)
		must(t, err)
		if n != 2 {
			t.Errorf("re-sealed %d values, want 2 (a deploy key, a token)", n)
		}
		if bytes.Equal(beforeKey, rawColumn(t, s, "deploy_keys", "private_key", f.app.ID)) || bytes.Equal(beforeToken, rawColumn(t, s, "git_tokens", "token", f.app.ID)) {
			t.Error("a sealed credential is unchanged by the rotation")
		}
		s.Close()
		s = openT(t, dsn, newKey)
		a, err := s.GitAuth(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if string(a.DeployKey) != testPrivate || a.Token != testToken || a.Username != "oauth2" {
			t.Errorf("after rotation: key %q, token %q, user %q", a.DeployKey, a.Token, a.Username)
		}
	})
}
