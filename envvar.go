package berth

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// EnvVar is an environment variable of an app. Values are secrets: the store
// keeps them sealed (AES-256-GCM) and they are never logged.
type EnvVar struct {
	Key       string    `json:"key"`
	Value     string    `json:"value"`
	UpdatedAt time.Time `json:"updated_at"`
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,255}$`)

// Limits on env vars.
const (
	MaxEnvVars     = 512
	MaxEnvValueLen = 64 << 10
)

// ValidEnv checks an env var key and value.
func ValidEnv(key, value string) error {
	if !envKeyRE.MatchString(key) {
		return fmt.Errorf("env key %q: use letters, digits and '_', not starting with a digit", clip(key))
	}
	if strings.HasPrefix(key, "BERTH_") {
		return fmt.Errorf("env key %q: the BERTH_ prefix is reserved", key)
	}
	if len(value) > MaxEnvValueLen || strings.ContainsRune(value, 0) {
		return fmt.Errorf("env %s: value longer than %d bytes or contains NUL", key, MaxEnvValueLen)
	}
	return nil
}
