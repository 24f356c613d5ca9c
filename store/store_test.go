package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store/storetest"
)

// The suite runs against every available dialect: SQLite always, and
// PostgreSQL when BERTH_TEST_POSTGRES holds a DSN (see .ci/postgres). Each
// test gets a fresh database: a file in t.TempDir(), or a new schema that
// is dropped when the test ends.

var testKey = bytes.Repeat([]byte{7}, 32)

// t0 has nanoseconds and a zone on purpose: the store keeps UTC
// microseconds.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("X", 3600))

// us is t as the store keeps it, to the microsecond.
func us(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

func ctxT(t *testing.T) context.Context { return t.Context() }

// dialects runs fn once per available dialect with a DSN of a fresh, empty
// database.
func dialects(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run(SQLite, func(t *testing.T) {
		fn(t, filepath.Join(t.TempDir(), "berth.db"))
	})
	t.Run(Postgres, func(t *testing.T) {
		fn(t, storetest.Postgres(t))
	})
}

// eachStore runs fn once per dialect with an open, empty store.
func eachStore(t *testing.T, fn func(t *testing.T, s *Store)) {
	dialects(t, func(t *testing.T, dsn string) {
		fn(t, openT(t, dsn, testKey))
	})
}

func openT(t *testing.T, dsn string, key []byte) *Store {
	t.Helper()
	s, err := Open(ctxT(t), dsn, key, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// wantKind fails unless err is a *berth.Error of kind k.
func wantKind(t *testing.T, err error, k berth.Kind) {
	t.Helper()
	var be *berth.Error
	if !errors.As(err, &be) || berth.ErrorKind(err) != k {
		t.Fatalf("error %v (%T): want kind %s", err, err, k)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fixture is a team with a user and an app.
type fixture struct {
	team *berth.Team
	user *berth.User
	app  *berth.App
}

func newFixture(t *testing.T, s *Store, name string) fixture {
	t.Helper()
	ctx := ctxT(t)
	f := fixture{
		team: &berth.Team{Name: name, CreatedAt: t0},
		user: &berth.User{Name: name + "-user", Email: name + "@example.com", CreatedAt: t0},
	}
	must(t, s.CreateTeam(ctx, f.team))
	must(t, s.CreateUser(ctx, f.user))
	must(t, s.AddMember(ctx, f.team.ID, f.user.ID, berth.RoleOwner))
	f.app = newApp(f.team.ID, "web")
	must(t, s.CreateApp(ctx, f.app))
	return f
}

func newApp(teamID, name string) *berth.App {
	a := &berth.App{
		TeamID:    teamID,
		Name:      name,
		Source:    berth.Source{Git: "https://example.com/" + name + ".git"},
		Build:     berth.BuildConfig{Args: map[string]string{"GO_VERSION": "1.26"}, Target: "prod"},
		Resources: berth.Resources{MemoryMB: 256, CPUs: 0.5},
		Volumes:   []berth.Volume{{Name: "data", Path: "/data"}},
		CreatedAt: t0,
	}
	a.SetDefaults()
	return a
}

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{`SELECT '?' FROM t WHERE b = ?`, `SELECT '?' FROM t WHERE b = $1`},
		{`UPDATE t SET x = 'it''s ?' WHERE y = ?`, `UPDATE t SET x = 'it''s ?' WHERE y = $1`},
		{`VALUES (?, ?), (?, ?), (?, ?), (?, ?), (?, ?), (?)`, `VALUES ($1, $2), ($3, $4), ($5, $6), ($7, $8), ($9, $10), ($11)`},
	} {
		if got := rebind(tc.in); got != tc.want {
			t.Errorf("rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		dsn  string
		key  []byte
	}{
		{"no key", filepath.Join(dir, "a.db"), nil},
		{"short key", filepath.Join(dir, "b.db"), make([]byte, 16)},
		{"31 bytes", filepath.Join(dir, "c.db"), make([]byte, 31)},
		{"33 bytes", filepath.Join(dir, "d.db"), make([]byte, 33)},
		{"empty path", "", testKey},
		{"empty sqlite URL", "sqlite://", testKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctxT(t), tc.dsn, tc.key, nil)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			wantKind(t, err, berth.Invalid)
		})
	}
}

func TestOpenSQLite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd ?#% dir")
	must(t, os.Mkdir(dir, 0o700))
	path := filepath.Join(dir, "berth.db")
	for _, dsn := range []string{path, "sqlite://" + path} {
		s := openT(t, dsn, testKey)
		if s.Dialect() != SQLite {
			t.Fatalf("dialect %q", s.Dialect())
		}
		must(t, s.Ping(ctxT(t)))
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000", "synchronous": "1",
		} {
			var got string
			must(t, s.w.QueryRowContext(ctxT(t), "PRAGMA "+pragma).Scan(&got))
			if got != want {
				t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
			}
		}
		// The reader pool must not write.
		if _, err := s.r.ExecContext(ctxT(t), `INSERT INTO settings (key, value) VALUES ('x', 'y')`); err == nil {
			t.Error("the reader pool wrote")
		}
		s.Close()
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at its path: %v", err)
	}
}

func TestOpenMemory(t *testing.T) {
	s := openT(t, ":memory:", testKey)
	f := newFixture(t, s, "acme")
	if _, err := s.App(ctxT(t), f.team.ID, "web"); err != nil {
		t.Fatal(err)
	}
}

func TestMigrations(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		// Several processes starting at once on an empty database.
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				s, err := Open(ctx, dsn, testKey, nil)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			must(t, err)
		}

		s := openT(t, dsn, testKey)
		f := newFixture(t, s, "acme")
		s.Close()

		// Reopening applies nothing again and keeps the data.
		s = openT(t, dsn, testKey)
		all, err := migrations(s.dialect)
		must(t, err)
		var n, max int
		must(t, s.w.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max))
		if n != len(all) || max != all[len(all)-1].version {
			t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, max, len(all))
		}
		if _, err := s.App(ctx, f.team.ID, "web"); err != nil {
			t.Fatalf("after reopen: %v", err)
		}

		// A database that lacks an earlier migration (a development build
		// applied a later one first) gets it at the next start.
		for _, q := range []string{`DROP TABLE metric_rollups`, `DROP TABLE metric_samples`, `DELETE FROM schema_migrations WHERE version = 4`} {
			_, err = s.writer().exec(ctx, q)
			must(t, err)
		}
		s.Close()
		s = openT(t, dsn, testKey)
		if ok, err := s.reader().exists(ctx, `SELECT 1 FROM schema_migrations WHERE version = 4`); err != nil || !ok {
			t.Fatalf("migration 4 missing after reopen: %v, %v", ok, err)
		}
		_, err = s.writer().exec(ctx, `SELECT COUNT(*) FROM metric_samples`)
		must(t, err)

		// A database migrated by a newer berth is refused.
		_, err = s.writer().exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, 9999, "future", t0)
		must(t, err)
		s.Close()
		if s, err := Open(ctx, dsn, testKey, nil); err == nil {
			s.Close()
			t.Fatal("Open accepted a schema from the future")
		} else if !strings.Contains(err.Error(), "newer") {
			t.Fatalf("error %v: want it to say the schema is newer", err)
		}
	})
}

func TestMigrationFilesMatch(t *testing.T) {
	lite, err := migrations(SQLite)
	must(t, err)
	pg, err := migrations(Postgres)
	must(t, err)
	if len(lite) != len(pg) {
		t.Fatalf("%d SQLite migrations, %d PostgreSQL ones", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].version != pg[i].version || lite[i].name != pg[i].name {
			t.Errorf("migration %d: %04d_%s vs %04d_%s", i, lite[i].version, lite[i].name, pg[i].version, pg[i].name)
		}
	}
}

func TestSettings(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		_, err := s.Setting(ctx, "domain")
		wantKind(t, err, berth.NotFound)
		must(t, s.SetSetting(ctx, "domain", "example.com"))
		must(t, s.SetSetting(ctx, "domain", "example.org"))
		if v, err := s.Setting(ctx, "domain"); err != nil || v != "example.org" {
			t.Fatalf("Setting = %q, %v", v, err)
		}
		wantKind(t, s.SetSetting(ctx, keyCheckSetting, "x"), berth.Invalid)
	})
}

func TestTimesRoundTrip(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		for _, at := range []time.Time{
			t0,
			time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			time.Date(2038, 1, 19, 3, 14, 8, 1000, time.FixedZone("Y", -7*3600)),
			time.Date(2025, 6, 1, 0, 0, 0, 0, time.Local),
		} {
			tok := &berth.Token{TeamID: f.team.ID, UserID: f.user.ID, Name: "t", Hash: []byte(at.String()), CreatedAt: at, ExpiresAt: &at}
			must(t, s.CreateToken(ctx, tok))
			must(t, s.TouchToken(ctx, tok.ID, at))
			got, err := s.TokenByHash(ctx, tok.Hash)
			must(t, err)
			want := at.Truncate(time.Microsecond)
			for name, v := range map[string]time.Time{"created": got.CreatedAt, "expires": *got.ExpiresAt, "last used": *got.LastUsedAt} {
				if !v.Equal(want) || v.Location() != time.UTC {
					t.Errorf("%s at %v, want %v in UTC", name, v, want)
				}
			}
		}
	})
}

func TestTeamsUsersTokens(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		if ok, err := s.HasTeams(ctx); err != nil || ok {
			t.Fatalf("HasTeams on a fresh store = %v, %v", ok, err)
		}
		f := newFixture(t, s, "acme")
		if ok, err := s.HasTeams(ctx); err != nil || !ok {
			t.Fatalf("HasTeams = %v, %v", ok, err)
		}
		wantKind(t, s.CreateTeam(ctx, &berth.Team{Name: "acme"}), berth.Conflict)
		wantKind(t, s.CreateUser(ctx, &berth.User{Name: "x", Email: f.user.Email}), berth.Conflict)
		must(t, s.CreateUser(ctx, &berth.User{Name: "robot"}))
		must(t, s.CreateUser(ctx, &berth.User{Name: "robot2"})) // no email twice is fine

		team, err := s.Team(ctx, f.team.ID)
		must(t, err)
		if team.Name != "acme" || !team.CreatedAt.Equal(t0.Truncate(time.Microsecond)) {
			t.Fatalf("Team = %+v", team)
		}
		user, err := s.User(ctx, f.user.ID)
		must(t, err)
		if *user != *f.user {
			t.Fatalf("User = %+v, want %+v", user, f.user)
		}
		_, err = s.Team(ctx, "team_nope")
		wantKind(t, err, berth.NotFound)
		_, err = s.User(ctx, "user_nope")
		wantKind(t, err, berth.NotFound)

		wantKind(t, s.AddMember(ctx, f.team.ID, f.user.ID, berth.RoleAdmin), berth.Conflict)
		wantKind(t, s.AddMember(ctx, f.team.ID, "user_nope", berth.RoleAdmin), berth.NotFound)
		if role, err := s.Member(ctx, f.team.ID, f.user.ID); err != nil || role != berth.RoleOwner {
			t.Fatalf("Member = %q, %v", role, err)
		}
		other := newFixture(t, s, "other")
		_, err = s.Member(ctx, other.team.ID, f.user.ID)
		wantKind(t, err, berth.NotFound)
		if team, user, role, err := s.Membership(ctx, f.team.ID, f.user.ID); err != nil || *team != *f.team || *user != *f.user || role != berth.RoleOwner {
			t.Fatalf("Membership = %+v, %+v, %q, %v", team, user, role, err)
		}
		for _, ids := range [][2]string{{other.team.ID, f.user.ID}, {"team_nope", f.user.ID}, {f.team.ID, "user_nope"}} {
			_, _, _, err = s.Membership(ctx, ids[0], ids[1])
			wantKind(t, err, berth.NotFound)
		}

		exp := t0.Add(time.Hour)
		tok := &berth.Token{TeamID: f.team.ID, UserID: f.user.ID, Name: "ci", Hash: []byte{1, 2, 3},
			Scopes: []berth.Scope{berth.ScopeDeploy, berth.ScopeRead}, CreatedAt: t0, ExpiresAt: &exp}
		must(t, s.CreateToken(ctx, tok))
		wantKind(t, s.CreateToken(ctx, &berth.Token{TeamID: f.team.ID, Name: "dup", Hash: []byte{1, 2, 3}}), berth.Conflict)
		wantKind(t, s.CreateToken(ctx, &berth.Token{TeamID: "team_nope", Name: "x", Hash: []byte{9}}), berth.NotFound)
		wantKind(t, s.CreateToken(ctx, &berth.Token{TeamID: f.team.ID, Name: "x"}), berth.Invalid)
		robot := &berth.Token{TeamID: f.team.ID, Name: "robot", Hash: []byte{4}, CreatedAt: t0.Add(time.Second)}
		must(t, s.CreateToken(ctx, robot))

		got, err := s.TokenByHash(ctx, []byte{1, 2, 3})
		must(t, err)
		if got.ID != tok.ID || got.UserID != f.user.ID || len(got.Scopes) != 2 || got.Scopes[0] != berth.ScopeDeploy ||
			!got.ExpiresAt.Equal(us(exp)) || got.LastUsedAt != nil {
			t.Fatalf("TokenByHash = %+v", got)
		}
		_, err = s.TokenByHash(ctx, []byte{1, 2})
		wantKind(t, err, berth.NotFound)
		must(t, s.TouchToken(ctx, tok.ID, t0.Add(time.Minute)))
		wantKind(t, s.TouchToken(ctx, "tok_nope", t0), berth.NotFound)

		list, err := s.Tokens(ctx, f.team.ID)
		must(t, err)
		if len(list) != 2 || list[0].ID != tok.ID || list[1].ID != robot.ID || list[1].UserID != "" ||
			list[0].LastUsedAt == nil || !list[0].LastUsedAt.Equal(us(t0.Add(time.Minute))) {
			t.Fatalf("Tokens = %+v", list)
		}
		if list, err := s.Tokens(ctx, other.team.ID); err != nil || len(list) != 0 {
			t.Fatalf("other team's Tokens = %v, %v", list, err)
		}
		wantKind(t, s.DeleteToken(ctx, other.team.ID, tok.ID), berth.NotFound)
		must(t, s.DeleteToken(ctx, f.team.ID, tok.ID))
		wantKind(t, s.DeleteToken(ctx, f.team.ID, tok.ID), berth.NotFound)
		_, err = s.TokenByHash(ctx, []byte{1, 2, 3})
		wantKind(t, err, berth.NotFound)
	})
}

func TestSealer(t *testing.T) {
	s, err := newSealer(testKey)
	must(t, err)
	other, err := newSealer(bytes.Repeat([]byte{8}, 32))
	must(t, err)
	secret := []byte("hunter2")
	a, b := s.seal(secret, "env/app_a/K"), s.seal(secret, "env/app_a/K")
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	if bytes.Contains(a, secret) || a[0] != sealV1 {
		t.Fatalf("sealed value %x", a)
	}
	if got, err := s.open(a, "env/app_a/K"); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open = %q, %v", got, err)
	}
	tampered := bytes.Clone(a)
	tampered[len(tampered)-1] ^= 1
	for name, tc := range map[string]struct {
		s      *sealer
		sealed []byte
		where  string
	}{
		"wrong key":      {other, a, "env/app_a/K"},
		"other row":      {s, a, "env/app_b/K"},
		"tampered":       {s, tampered, "env/app_a/K"},
		"truncated":      {s, a[:10], "env/app_a/K"},
		"empty":          {s, nil, "env/app_a/K"},
		"unknown format": {s, append([]byte{9}, a[1:]...), "env/app_a/K"},
	} {
		got, err := tc.s.open(tc.sealed, tc.where)
		if !errors.Is(err, errUnseal) || got != nil {
			t.Errorf("%s: open = %q, %v; want errUnseal", name, got, err)
		}
	}
}

func TestWrongKey(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		s := openT(t, dsn, testKey)
		f := newFixture(t, s, "acme")
		must(t, s.SetEnv(ctx, f.team.ID, f.app.ID, map[string]string{"TOKEN": "s3cret-value"}))
		s.Close()

		_, err := Open(ctx, dsn, bytes.Repeat([]byte{8}, 32), nil)
		wantKind(t, err, berth.Invalid)
		if !strings.Contains(err.Error(), "seal key") {
			t.Fatalf("error %q does not name the seal key", err)
		}

		// A value moved to another row does not open there, and the error
		// does not leak it.
		s = openT(t, dsn, testKey)
		_, err = s.writer().exec(ctx, `UPDATE env_vars SET key = 'OTHER' WHERE key = 'TOKEN'`)
		must(t, err)
		_, err = s.Env(ctx, f.team.ID, f.app.ID)
		wantKind(t, err, berth.Internal)
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error %q leaks the secret", err)
		}
	})
}

// TestSealedAtRest checks the raw database for secrets: env var values and
// release env must not be there in clear, while a plain value must (so the
// check can fail).
func TestSealedAtRest(t *testing.T) {
	const secret, plain = "pa55-w0rd-in-clear-text", "plain-marker-value"
	dialects(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		s := openT(t, dsn, testKey)
		f := newFixture(t, s, "acme")
		must(t, s.SetEnv(ctx, f.team.ID, f.app.ID, map[string]string{"DB_PASSWORD": secret}))
		must(t, s.CreateRelease(ctx, &berth.Release{TeamID: f.team.ID, AppID: f.app.ID, Image: plain,
			Config: berth.ReleaseConfig{Port: 8080, Env: map[string]string{"DB_PASSWORD": secret}}}))

		// Every column of the tables that hold secrets, as raw bytes.
		var dump []byte
		for _, q := range []string{`SELECT key, value FROM env_vars`, `SELECT image, config, env FROM releases`} {
			rows, err := s.w.QueryContext(ctx, q)
			must(t, err)
			cols, _ := rows.Columns()
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				must(t, rows.Scan(ptrs...))
				for _, v := range vals {
					switch v := v.(type) {
					case []byte:
						dump = append(dump, v...)
					case string:
						dump = append(dump, v...)
					}
				}
			}
			must(t, rows.Err())
			rows.Close()
		}
		if s.Dialect() == SQLite {
			// And the files themselves.
			s.Close()
			for _, suffix := range []string{"", "-wal"} {
				b, err := os.ReadFile(dsn + suffix)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				dump = append(dump, b...)
			}
		}
		if !bytes.Contains(dump, []byte(plain)) || !bytes.Contains(dump, []byte("DB_PASSWORD")) {
			t.Fatal("the dump lacks the plain values: the check is broken")
		}
		if bytes.Contains(dump, []byte(secret)) {
			t.Fatal("a secret is stored in clear")
		}
	})
}

// TestConcurrentWriters hammers one database from many goroutines and from
// two stores at once (as two processes would): no write may fail with
// SQLITE_BUSY or lose a row.
func TestConcurrentWriters(t *testing.T) {
	dialects(t, func(t *testing.T, dsn string) {
		ctx := ctxT(t)
		s1 := openT(t, dsn, testKey)
		s2 := openT(t, dsn, testKey)
		f := newFixture(t, s1, "acme")
		d := &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID, CreatedAt: t0}
		must(t, s1.CreateDeployment(ctx, d))

		const workers, each = 12, 15
		var wg sync.WaitGroup
		errc := make(chan error, workers*each*4)
		for w := range workers {
			s := []*Store{s1, s2}[w%2]
			wg.Go(func() {
				for i := range each {
					app := newApp(f.team.ID, "app-"+string(rune('a'+w))+"-"+string(rune('a'+i)))
					errc <- s.CreateApp(ctx, app)
					errc <- s.SetEnv(ctx, f.team.ID, app.ID, map[string]string{"N": "1", "M": "2"})
					errc <- s.AppendLog(ctx, f.team.ID, d.ID, t0, "a line", "another")
					_, err := s.Apps(ctx, f.team.ID)
					errc <- err
				}
			})
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		apps, err := s1.Apps(ctx, f.team.ID)
		must(t, err)
		if len(apps) != workers*each+1 {
			t.Fatalf("%d apps, want %d", len(apps), workers*each+1)
		}
		logs, err := s2.Logs(ctx, f.team.ID, d.ID, 0, 0)
		must(t, err)
		if len(logs) != workers*each*2 {
			t.Fatalf("%d log lines, want %d", len(logs), workers*each*2)
		}
		for i, l := range logs {
			if l.Seq != int64(i+1) {
				t.Fatalf("log line %d has seq %d", i, l.Seq)
			}
		}
	})
}
