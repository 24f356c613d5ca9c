package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// The secrets key lives in DATA/secret.key. A rotation stages the new key
// in secret.key.new and keeps the old one in secret.key.old, so that the
// key of the database is on disk at every instant; the next start settles
// which one it is (openStore).
const (
	keyFile    = "secret.key"
	newKeyFile = keyFile + ".new"
	oldKeyFile = keyFile + ".old"
)

func newRotateKeyCmd() *cobra.Command {
	data := envOr("BERTH_DATA", "data")
	database := os.Getenv("BERTH_DATABASE_URL")
	cmd := &cobra.Command{
		Use:   "rotate-key",
		Short: "Replace the secrets key and re-seal every secret in the store with a new one",
		Long: `Generate a new secrets key, re-seal every sealed value of the store (env vars,
release env, …) with it in one transaction, then replace DATA/secret.key. The old
key is kept as DATA/secret.key.old until the server next starts with the new one.
The server must be stopped: the command refuses to run while a server uses the data
directory. With PostgreSQL, stop every server that uses the database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rotateKey(cmd.Context(), data, database, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&data, "data", data, "data directory (env BERTH_DATA)")
	cmd.Flags().StringVar(&database, "database", database, "postgres:// URL; default the SQLite file in the data directory (env BERTH_DATABASE_URL)")
	return cmd
}

// rotateKey replaces the secrets key of the store in data (or at dsn).
// A crash at any point leaves a store that opens with a key on disk: the
// new key is written (secret.key.new) and the old one kept (secret.key.old)
// before the transaction commits, and secret.key is replaced by a rename
// after it.
func rotateKey(ctx context.Context, data, dsn string, stdout io.Writer) error {
	data, err := filepath.Abs(data)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(data, keyFile)); err != nil {
		return fmt.Errorf("no secrets key in %s: %w", data, err)
	}
	unlock, err := lockData(data)
	if err != nil {
		return err
	}
	defer unlock()
	if dsn == "" {
		dsn = filepath.Join(data, "berth.db")
	}
	log := slog.New(slog.DiscardHandler)
	st, err := openStore(ctx, dsn, data, log)
	if err != nil {
		return err
	}
	defer st.Close()
	old, err := readKeyFile(filepath.Join(data, keyFile))
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if err := writeKeyFile(filepath.Join(data, newKeyFile), key); err != nil {
		return err
	}
	if err := writeKeyFile(filepath.Join(data, oldKeyFile), old); err != nil {
		return err
	}
	n, err := st.RotateKey(ctx, key)
	if err != nil {
		os.Remove(filepath.Join(data, newKeyFile))
		return fmt.Errorf("rotate key (the store and %s are unchanged): %w", keyFile, err)
	}
	if err := replaceFile(filepath.Join(data, newKeyFile), filepath.Join(data, keyFile)); err != nil {
		return fmt.Errorf("the store is sealed with the key in %s, but it could not replace %s (the server will use it at its next start): %w", newKeyFile, keyFile, err)
	}
	fmt.Fprintf(stdout, "re-sealed %d values with a new key in %s; the old key stays in %s until the server starts with the new one\n",
		n, filepath.Join(data, keyFile), filepath.Join(data, oldKeyFile))
	return nil
}

// openStore opens the store with the secrets key of data, creating the key
// on first start. When the key in secret.key does not open the store, a
// rotation was interrupted: the staged or the kept key is tried, and the
// one that opens the store becomes secret.key. Once secret.key opens the
// store, the files a rotation leaves are removed.
func openStore(ctx context.Context, dsn, data string, log *slog.Logger) (*store.Store, error) {
	key, err := loadOrCreateKey(filepath.Join(data, keyFile))
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, dsn, key, log)
	if err == nil {
		for _, f := range []string{newKeyFile, oldKeyFile} {
			if err := os.Remove(filepath.Join(data, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
				log.Warn("remove key file of a rotation", "file", f, "err", err)
			}
		}
		return st, nil
	}
	if !berth.IsKind(err, berth.Invalid) {
		return nil, fmt.Errorf("open store: %w", err)
	}
	for _, f := range []string{newKeyFile, oldKeyFile} {
		p := filepath.Join(data, f)
		k, kerr := readKeyFile(p)
		if kerr != nil {
			continue
		}
		st, kerr := store.Open(ctx, dsn, k, log)
		if kerr != nil {
			continue
		}
		log.Warn("a key rotation was interrupted; using the key the store is sealed with", "key", f)
		if f == oldKeyFile {
			err = writeKeyFile(p+".tmp", k)
			if err == nil {
				err = replaceFile(p+".tmp", filepath.Join(data, keyFile))
			}
		} else {
			err = replaceFile(p, filepath.Join(data, keyFile))
		}
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("restore %s from %s: %w", keyFile, f, err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("open store: %w", err)
}

// readKeyFile reads a 32-byte key written as hex, refusing a file others
// may read.
func readKeyFile(p string) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets key %s is readable by others (mode %v): chmod 600 it", p, fi.Mode().Perm())
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("secrets key %s: want 64 hex characters", p)
	}
	return key, nil
}

// writeKeyFile writes key to p (mode 0600) through a temporary file that
// is synced and renamed, so p holds either nothing or the whole key.
func writeKeyFile(p string, key []byte) error {
	tmp := fmt.Sprintf("%s.%d.tmp", p, time.Now().UnixNano())
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	_, err = f.Write([]byte(hex.EncodeToString(key) + "\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = replaceFile(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// replaceFile renames from to to and syncs their directory, so the rename
// survives a crash.
func replaceFile(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(to))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
