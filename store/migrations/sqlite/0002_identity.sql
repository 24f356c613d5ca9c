-- Accounts and sign-in, SQLite dialect: passwords, TOTP, browser sessions,
-- recovery codes, linked OpenID Connect identities and the team setting
-- that makes a second factor mandatory.

ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT ''; -- argon2id PHC string; '' = none
ALTER TABLE users ADD COLUMN password_changed_at TEXT;
ALTER TABLE users ADD COLUMN totp_secret BLOB; -- sealed
ALTER TABLE users ADD COLUMN totp_enabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0; -- last accepted time step: no code is accepted twice

-- E-mail addresses are unique whatever their case.
CREATE UNIQUE INDEX users_email_lower ON users (lower(email)) WHERE email <> '';

ALTER TABLE teams ADD COLUMN require_2fa INTEGER NOT NULL DEFAULT 0;

CREATE TABLE sessions (
	id           BLOB PRIMARY KEY, -- SHA-256 of the cookie's secret
	user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	team_id      TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE, -- the team the session acts in
	csrf         TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	expires_at   TEXT NOT NULL, -- absolute expiry
	last_seen_at TEXT NOT NULL, -- idle expiry counts from here
	client_addr  TEXT NOT NULL DEFAULT '',
	user_agent   TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE recovery_codes (
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash    BLOB NOT NULL, -- SHA-256 of the normalised code
	used_at TEXT,
	PRIMARY KEY (user_id, hash)
) STRICT;

CREATE TABLE identities (
	issuer     TEXT NOT NULL,
	subject    TEXT NOT NULL,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at TEXT NOT NULL,
	PRIMARY KEY (issuer, subject)
) STRICT;

CREATE INDEX identities_user ON identities (user_id);
