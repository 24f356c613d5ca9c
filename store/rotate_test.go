package store

import (
	"bytes"
	"testing"

	"github.com/berthhq/berth"
)

func TestRotateKey(t *testing.T) {
	newKey := bytes.Repeat([]byte{42}, 32)
	dialects(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		s := openT(t, dsn, testKey)
		f := newFixture(t, s, "acme")
		g := newFixture(t, s, "other")
		must(t, s.SetEnv(ctx, f.team.ID, f.app.ID, map[string]string{"TOKEN": "s3cret-value", "EMPTY": ""}))
		must(t, s.SetEnv(ctx, g.team.ID, g.app.ID, map[string]string{"KEY": "other-team"}))
		rel := &berth.Release{TeamID: f.team.ID, AppID: f.app.ID, Image: "img",
			Config: berth.ReleaseConfig{Port: 8080, Env: map[string]string{"TOKEN": "s3cret-value"}}}
		must(t, s.CreateRelease(ctx, rel))
		noEnv := &berth.Release{TeamID: f.team.ID, AppID: f.app.ID, Image: "img2", Config: berth.ReleaseConfig{Port: 8080}}
		must(t, s.CreateRelease(ctx, noEnv))
		must(t, s.SetTOTPSecret(ctx, f.user.ID, "JBSWY3DPEHPK3PXP"))
		ps := berth.DefaultPreviewSettings(f.team.ID, f.app.ID)
		ps.Env, ps.StatusToken = map[string]string{"DB": "preview-db"}, "ghp_statustoken"
		must(t, s.SetPreviewSettings(ctx, ps))

		n, err := s.RotateKey(ctx, newKey)
		must(t, err)
		if n < 7 {
			t.Errorf("re-sealed %d values, want at least 7 (3 env vars, a release env, a TOTP secret, preview env and token)", n)
		}
		// The open store goes on with the new key.
		must(t, s.SetEnv(ctx, f.team.ID, f.app.ID, map[string]string{"AFTER": "rotation"}))
		s.Close()

		if _, err := Open(ctx, dsn, testKey, nil); !berth.IsKind(err, berth.Invalid) {
			t.Fatalf("open with the old key: %v, want refused", err)
		}
		s = openT(t, dsn, newKey)
		env, err := s.Env(ctx, f.team.ID, f.app.ID)
		must(t, err)
		got := map[string]string{}
		for _, v := range env {
			got[v.Key] = v.Value
		}
		if got["TOKEN"] != "s3cret-value" || got["EMPTY"] != "" || got["AFTER"] != "rotation" || len(got) != 3 {
			t.Errorf("env after rotation: %v", got)
		}
		if env, err := s.Env(ctx, g.team.ID, g.app.ID); err != nil || len(env) != 1 || env[0].Value != "other-team" {
			t.Errorf("other team's env after rotation: %v, %v", env, err)
		}
		r, err := s.Release(ctx, f.team.ID, rel.ID)
		must(t, err)
		if r.Config.Env["TOKEN"] != "s3cret-value" {
			t.Errorf("release env after rotation: %v", r.Config.Env)
		}
		if secret, _, err := s.TOTP(ctx, f.user.ID); err != nil || secret != "JBSWY3DPEHPK3PXP" {
			t.Errorf("TOTP secret after rotation: %q, %v", secret, err)
		}
		if ps, err := s.PreviewSettings(ctx, f.team.ID, f.app.ID); err != nil || ps.Env["DB"] != "preview-db" || ps.StatusToken != "ghp_statustoken" {
			t.Errorf("preview settings after rotation: %+v, %v", ps, err)
		}
		if r, err := s.Release(ctx, f.team.ID, noEnv.ID); err != nil || len(r.Config.Env) != 0 {
			t.Errorf("release without env: %v, %v", r, err)
		}
	})
}

// TestRotateKeyRollsBack: a value that does not open with the current key
// stops the rotation before anything changed; the old key still opens
// everything.
func TestRotateKeyRollsBack(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		s := openT(t, dsn, testKey)
		f := newFixture(t, s, "acme")
		must(t, s.SetEnv(ctx, f.team.ID, f.app.ID, map[string]string{"A": "first-value", "B": "second-value", "Z": "last-value"}))
		rel := &berth.Release{TeamID: f.team.ID, AppID: f.app.ID, Image: "img",
			Config: berth.ReleaseConfig{Port: 8080, Env: map[string]string{"A": "first-value"}}}
		must(t, s.CreateRelease(ctx, rel))
		// Damage the release's env: env_vars (re-sealed first) are then
		// already rewritten when the rotation meets it.
		_, err := s.writer().exec(ctx, `UPDATE releases SET env = ? WHERE id = ?`, []byte{1, 2, 3}, rel.ID)
		must(t, err)

		_, err = s.RotateKey(ctx, bytes.Repeat([]byte{42}, 32))
		wantKind(t, err, berth.Invalid)
		s.Close()

		if _, err := Open(ctx, dsn, bytes.Repeat([]byte{42}, 32), nil); err == nil {
			t.Fatal("the new key opens the store after a failed rotation")
		}
		s = openT(t, dsn, testKey)
		env, err := s.Env(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if len(env) != 3 || env[0].Value != "first-value" || env[2].Value != "last-value" {
			t.Errorf("env after a failed rotation: %v", env)
		}
	})
}
