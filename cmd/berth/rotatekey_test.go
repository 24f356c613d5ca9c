package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// keyFixture is a data directory with a store holding one secret.
type keyFixture struct {
	t          *testing.T
	data, dsn  string
	team, app  string
	log        *slog.Logger
	initialKey []byte
}

func newKeyFixture(t *testing.T) *keyFixture {
	t.Helper()
	ctx := context.Background()
	x := &keyFixture{t: t, data: t.TempDir(), log: slog.New(slog.DiscardHandler)}
	x.dsn = filepath.Join(x.data, "berth.db")
	st, err := openStore(ctx, x.dsn, x.data, x.log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	team := &berth.Team{ID: berth.NewID("team"), Name: "main", CreatedAt: now}
	app := &berth.App{ID: berth.NewID("app"), TeamID: team.ID, Name: "web", Source: berth.Source{Image: "nginx:1"}, CreatedAt: now, UpdatedAt: now}
	app.SetDefaults()
	if err := st.CreateTeam(ctx, team); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if err := st.SetEnv(ctx, team.ID, app.ID, map[string]string{"TOKEN": "s3cret-value"}); err != nil {
		t.Fatal(err)
	}
	x.team, x.app = team.ID, app.ID
	x.initialKey = x.key(keyFile)
	return x
}

func (x *keyFixture) key(name string) []byte {
	x.t.Helper()
	k, err := readKeyFile(filepath.Join(x.data, name))
	if err != nil {
		x.t.Fatal(err)
	}
	return k
}

// secret opens the store as the server does and reads the secret.
func (x *keyFixture) secret() string {
	x.t.Helper()
	st, err := openStore(context.Background(), x.dsn, x.data, x.log)
	if err != nil {
		x.t.Fatalf("open as the server does: %v", err)
	}
	defer st.Close()
	env, err := st.Env(context.Background(), x.team, x.app)
	if err != nil || len(env) != 1 {
		x.t.Fatalf("env: %v, %v", env, err)
	}
	return env[0].Value
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestRotateKeyCommand(t *testing.T) {
	x := newKeyFixture(t)
	ctx := context.Background()
	var out bytes.Buffer
	if err := rotateKey(ctx, x.data, "", &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "re-sealed 1 values") {
		t.Errorf("output %q", out.String())
	}
	newKey := x.key(keyFile)
	if bytes.Equal(newKey, x.initialKey) || !bytes.Equal(x.key(oldKeyFile), x.initialKey) || exists(filepath.Join(x.data, newKeyFile)) {
		t.Fatal("after rotation: want a new secret.key, the old one in secret.key.old, no secret.key.new")
	}
	if fi, _ := os.Stat(filepath.Join(x.data, keyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode().Perm())
	}
	if _, err := store.Open(ctx, x.dsn, x.initialKey, nil); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("the old key opens the store: %v", err)
	}
	if x.secret() != "s3cret-value" {
		t.Error("secret changed")
	}
	// The start that verified the new key dropped the old one.
	if exists(filepath.Join(x.data, oldKeyFile)) {
		t.Error("secret.key.old survives a start with the new key")
	}
}

func TestRotateKeyRefusesWhileLocked(t *testing.T) {
	x := newKeyFixture(t)
	unlock, err := lockData(x.data) // as a running server holds it
	if err != nil {
		t.Fatal(err)
	}
	err = rotateKey(context.Background(), x.data, "", io.Discard)
	unlock()
	if err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("rotate while a server runs: %v", err)
	}
	if !bytes.Equal(x.key(keyFile), x.initialKey) {
		t.Error("the key changed")
	}
	if err := rotateKey(context.Background(), x.data, "", io.Discard); err != nil {
		t.Fatalf("after the server stopped: %v", err)
	}
}

// TestRotateKeyCrashAfterCommit: the store was re-sealed but secret.key
// not yet replaced when the process died; the next start finds the key the
// store is sealed with and makes it secret.key.
func TestRotateKeyCrashAfterCommit(t *testing.T) {
	x := newKeyFixture(t)
	ctx := context.Background()
	st, err := store.Open(ctx, x.dsn, x.initialKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := bytes.Repeat([]byte{5}, 32)
	if err := writeKeyFile(filepath.Join(x.data, newKeyFile), next); err != nil {
		t.Fatal(err)
	}
	if err := writeKeyFile(filepath.Join(x.data, oldKeyFile), x.initialKey); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RotateKey(ctx, next); err != nil {
		t.Fatal(err)
	}
	st.Close()
	// "crash": secret.key still holds the old key.
	if x.secret() != "s3cret-value" {
		t.Fatal("secret changed")
	}
	if !bytes.Equal(x.key(keyFile), next) {
		t.Error("secret.key is not the key the store is sealed with")
	}
}

// TestRotateKeyFailureKeepsOldKey: a value that does not open stops the
// rotation; the store and secret.key are as they were.
func TestRotateKeyFailureKeepsOldKey(t *testing.T) {
	x := newKeyFixture(t)
	ctx := context.Background()
	st, err := store.Open(ctx, x.dsn, x.initialKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateRelease(ctx, &berth.Release{TeamID: x.team, AppID: x.app, Image: "nginx:1",
		Config: berth.ReleaseConfig{Port: 80, Env: map[string]string{"TOKEN": "s3cret-value"}}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	damage(t, x.dsn)
	err = rotateKey(ctx, x.data, "", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "unchanged") {
		t.Fatalf("rotate with a damaged value: %v", err)
	}
	if !bytes.Equal(x.key(keyFile), x.initialKey) || exists(filepath.Join(x.data, newKeyFile)) {
		t.Error("a failed rotation changed secret.key or left secret.key.new")
	}
	if x.secret() != "s3cret-value" {
		t.Error("secret changed")
	}
}

// damage overwrites every release's sealed env with bytes that open with
// no key.
func damage(t *testing.T, dsn string) {
	t.Helper()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE releases SET env = X'010203'`); err != nil {
		t.Fatal(err)
	}
}
