-- Accounts and sign-in, PostgreSQL dialect: passwords, TOTP, browser
-- sessions, recovery codes, linked OpenID Connect identities and the team
-- setting that makes a second factor mandatory.

ALTER TABLE users ADD COLUMN password_hash TEXT NOT NULL DEFAULT ''; -- argon2id PHC string; '' = none
ALTER TABLE users ADD COLUMN password_changed_at TIMESTAMPTZ;
ALTER TABLE users ADD COLUMN totp_secret BYTEA; -- sealed
ALTER TABLE users ADD COLUMN totp_enabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT NOT NULL DEFAULT 0; -- last accepted time step: no code is accepted twice

-- E-mail addresses are unique whatever their case.
CREATE UNIQUE INDEX users_email_lower ON users (lower(email)) WHERE email <> '';

ALTER TABLE teams ADD COLUMN require_2fa BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE sessions (
	id           BYTEA PRIMARY KEY, -- SHA-256 of the cookie's secret
	user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	team_id      TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE, -- the team the session acts in
	csrf         TEXT NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	expires_at   TIMESTAMPTZ NOT NULL, -- absolute expiry
	last_seen_at TIMESTAMPTZ NOT NULL, -- idle expiry counts from here
	client_addr  TEXT NOT NULL DEFAULT '',
	user_agent   TEXT NOT NULL DEFAULT ''
);

CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE recovery_codes (
	user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash    BYTEA NOT NULL, -- SHA-256 of the normalised code
	used_at TIMESTAMPTZ,
	PRIMARY KEY (user_id, hash)
);

CREATE TABLE identities (
	issuer     TEXT NOT NULL,
	subject    TEXT NOT NULL,
	user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (issuer, subject)
);

CREATE INDEX identities_user ON identities (user_id);
