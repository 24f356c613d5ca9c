package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/berthhq/berth"
)

// sealV1 opens every sealed value: AES-256-GCM with the store's key, then
// a 12-byte random nonce, then the ciphertext and its tag. A later version
// (another key, another cipher) gets another byte, so that key rotation can
// read old values while it re-seals them.
const sealV1 byte = 1

// errUnseal is what opening a value with the wrong key (or a damaged value)
// gives. It says nothing about the value.
var errUnseal = errors.New("cannot unseal: wrong key or damaged value")

// sealer seals secrets at rest. Each value is bound to where it lives (the
// additional data, such as "env/app_x/KEY"), so a sealed value copied to
// another row does not open there.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("the seal key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

func (s *sealer) seal(plain []byte, where string) []byte {
	n := s.aead.NonceSize()
	out := make([]byte, 1+n, 1+n+len(plain)+s.aead.Overhead())
	out[0] = sealV1
	rand.Read(out[1 : 1+n])
	return s.aead.Seal(out, out[1:1+n], plain, []byte(where))
}

func (s *sealer) open(sealed []byte, where string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealV1 {
		return nil, errUnseal
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(where))
	if err != nil {
		return nil, errUnseal
	}
	return plain, nil
}

// keyCheckSetting holds a value sealed with the store's key when the
// database was created, so that Open can tell a wrong key at once instead
// of at the first env var read.
const keyCheckSetting = "store.seal_check"

const keyCheckWhere = "store/seal_check"

// checkKey makes sure the database's sealed values open with this key.
func (s *Store) checkKey(ctx context.Context) error {
	const op = "open store"
	sealed := base64.StdEncoding.EncodeToString(s.seal.seal([]byte("berth"), keyCheckWhere))
	_, err := s.writer().exec(ctx, `INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`,
		keyCheckSetting, sealed)
	if err != nil {
		return dbError(op, fmt.Errorf("write key check: %w", err))
	}
	var stored string
	err = s.writer().row(ctx, `SELECT value FROM settings WHERE key = ?`, keyCheckSetting).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return berth.E(op, berth.Internal, "the seal key check disappeared")
	}
	if err != nil {
		return dbError(op, fmt.Errorf("read key check: %w", err))
	}
	raw, err := base64.StdEncoding.DecodeString(stored)
	if err == nil {
		_, err = s.seal.open(raw, keyCheckWhere)
	}
	if err != nil {
		return berth.E(op, berth.Invalid, "the seal key is not the one this database was created with")
	}
	return nil
}
