package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: RFC 6238's defaults, which every authenticator app
// supports: 30-second steps, 6 digits, HMAC-SHA1.
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew is how many steps before and after the current one a code
	// may come from, for clocks that drift.
	totpSkew = 1
)

// RecoveryCodeCount is how many recovery codes a user gets when they turn
// on TOTP; each works once.
const RecoveryCodeCount = 10

// NewTOTPKey makes a new TOTP secret for account (the user's e-mail or
// name) and returns it with its otpauth:// URL for a QR code.
func NewTOTPKey(issuer, account string) (secret, url string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: totpPeriod, SecretSize: 20,
		Digits: totpDigits, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return "", "", fmt.Errorf("generate totp key: %w", err)
	}
	return key.Secret(), key.URL(), nil
}

// totpStep returns the time step whose code code is, among the steps at
// most totpSkew away from now; false when none matches.
func totpStep(secret, code string, now time.Time) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != int(totpDigits) {
		return 0, false
	}
	opts := totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}
	cur := now.Unix() / totpPeriod
	found, step := false, int64(0)
	for s := cur - totpSkew; s <= cur+totpSkew; s++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*totpPeriod, 0), opts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 && !found {
			found, step = true, s
		}
	}
	return step, found
}

// CheckTOTP reports whether code is a valid TOTP code of the user's secret
// at now that was never accepted before: it records the code's time step,
// and a step at or before the last accepted one is refused, so a code
// seen by someone else (over a shoulder, in a proxy's log) is worthless.
func CheckTOTP(ctx context.Context, st *store.Store, userID, secret, code string, now time.Time) (bool, error) {
	step, ok := totpStep(secret, code, now)
	if !ok {
		return false, nil
	}
	return st.UseTOTPStep(ctx, userID, step)
}

// NewRecoveryCodes returns RecoveryCodeCount new recovery codes, to show
// to the user once, and their hashes, to store.
func NewRecoveryCodes() (codes []string, hashes [][]byte, err error) {
	for range RecoveryCodeCount {
		var b [10]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, nil, fmt.Errorf("read random bytes: %w", err)
		}
		s := secretEncoding.EncodeToString(b[:]) // 16 characters
		code := s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		codes = append(codes, code)
		hashes = append(hashes, HashRecoveryCode(code))
	}
	return codes, hashes, nil
}

// HashRecoveryCode hashes a recovery code as typed: case, spaces and dashes
// do not matter. Codes carry 80 random bits, so a plain SHA-256 is enough.
func HashRecoveryCode(code string) []byte {
	norm := strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return r
	}, code)
	h := sha256.Sum256([]byte("berth-recovery:" + norm))
	return h[:]
}

// UseRecoveryCode consumes one of the user's recovery codes and reports
// whether it was valid and unused.
func UseRecoveryCode(ctx context.Context, st *store.Store, userID, code string, now time.Time) (bool, error) {
	if len(code) > 64 {
		return false, nil
	}
	return st.ConsumeRecoveryCode(ctx, userID, HashRecoveryCode(code), now)
}

// StartTOTP begins TOTP enrolment for a user: it stores a new secret,
// switched off until ConfirmTOTP, and returns it and its otpauth:// URL.
// A user whose TOTP is already on must turn it off first.
func StartTOTP(ctx context.Context, st *store.Store, user *berth.User) (secret, url string, err error) {
	const op = "start totp"
	_, on, err := st.TOTP(ctx, user.ID)
	if err != nil {
		return "", "", err
	}
	if on {
		return "", "", berth.E(op, berth.Conflict, "two-factor authentication is already on; turn it off first")
	}
	account := user.Email
	if account == "" {
		account = user.Name
	}
	secret, url, err = NewTOTPKey("berth", account)
	if err != nil {
		return "", "", err
	}
	if err := st.SetTOTPSecret(ctx, user.ID, secret); err != nil {
		return "", "", err
	}
	return secret, url, nil
}

// ConfirmTOTP turns on TOTP for a user who started enrolment and proves it
// with a code, and returns their new recovery codes.
func ConfirmTOTP(ctx context.Context, st *store.Store, userID, code string, now time.Time) ([]string, error) {
	const op = "confirm totp"
	secret, on, err := st.TOTP(ctx, userID)
	if err != nil {
		return nil, err
	}
	switch {
	case on:
		return nil, berth.E(op, berth.Conflict, "two-factor authentication is already on")
	case secret == "":
		return nil, berth.E(op, berth.Conflict, "start the enrolment first (POST /api/v1/me/totp)")
	}
	ok, err := CheckTOTP(ctx, st, userID, secret, code, now)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, berth.E(op, berth.Invalid, "wrong code: check the authenticator app's clock and try the next code")
	}
	codes, hashes, err := NewRecoveryCodes()
	if err != nil {
		return nil, err
	}
	if err := st.ReplaceRecoveryCodes(ctx, userID, hashes); err != nil {
		return nil, err
	}
	if err := st.EnableTOTP(ctx, userID); err != nil {
		return nil, err
	}
	return codes, nil
}
