package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth/api"
)

// Settings come from flags, then BERTH_* variables, then the config file,
// then the defaults.
func TestServerConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "berth.json")
	if err := os.WriteFile(file, []byte(`{"listen": "127.0.0.1:4000", "proxy_listen": ":81", "build_timeout": "5m",
		"max_builds": 3, "allow_local_git": true, "network": "from-file", "max_webhook_kb": 1024, "webhook_rate": 10}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := newServerCmd()
	for name, v := range map[string]string{"listen": "127.0.0.1:5000", "webhook-rate": "30"} {
		if err := cmd.Flags().Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"BERTH_LISTEN": "127.0.0.1:4500", "BERTH_PROXY_LISTEN": ":82", "BERTH_DRAIN_TIMEOUT": "7s",
		"BERTH_WEBHOOK_RATE": "20", "BERTH_WEBHOOK_ADDR_RATE": "900"}
	cfg, err := resolveServerConfig(cmd.Flags(), file, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"listen (flag over env and file)", cfg.Listen, "127.0.0.1:5000"},
		{"proxy listen (env over file)", cfg.ProxyListen, ":82"},
		{"build timeout (file)", cfg.BuildTimeout, 5 * time.Minute},
		{"max builds (file)", cfg.MaxBuilds, 3},
		{"allow local git (file)", cfg.AllowLocalGit, true},
		{"drain timeout (env)", cfg.DrainTimeout, 7 * time.Second},
		{"keep releases (default)", cfg.KeepReleases, 10},
		{"data (default)", cfg.Data, "data"},
		{"max webhook kb (file)", cfg.MaxWebhookKB, int64(1024)},
		{"webhook rate (flag over env and file)", cfg.WebhookRate, 30},
		{"webhook addr rate (env)", cfg.WebhookAddrRate, 900},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The webhook endpoint gets them, in bytes.
	if l := cfg.webhookLimits(); l.MaxBody != 1<<20 || l.PerApp != 30 || l.PerAddr != 900 || l.Window != time.Minute {
		t.Errorf("webhook limits %+v", l)
	}
}

// TestServerConfigWebhookDefaults: without settings the webhook endpoint
// keeps the limits it always had.
func TestServerConfigWebhookDefaults(t *testing.T) {
	cfg, err := resolveServerConfig(newServerCmd().Flags(), "", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if l := cfg.webhookLimits(); l.MaxBody != api.DefaultMaxWebhookBody || l.PerApp != api.DefaultWebhookRate || l.PerAddr != api.DefaultWebhookAddrRate {
		t.Errorf("default webhook limits %+v", l)
	}
}

func TestServerConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		file string
		env  map[string]string
		want string
	}{
		"unknown key":             {file: `{"lisen": "x"}`, want: `unknown setting "lisen"`},
		"bad duration":            {file: `{"build_timeout": "soon"}`, want: "build_timeout"},
		"not an object":           {file: `[1]`, want: "want a JSON object"},
		"bad env":                 {env: map[string]string{"BERTH_MAX_BUILDS": "many"}, want: "BERTH_MAX_BUILDS"},
		"zero builds":             {env: map[string]string{"BERTH_MAX_BUILDS": "0"}, want: "--max-builds"},
		"zero logs kept":          {env: map[string]string{"BERTH_KEEP_LOGS": "0"}, want: "--keep-logs"},
		"tiny webhook body":       {env: map[string]string{"BERTH_MAX_WEBHOOK_KB": "16"}, want: "--max-webhook-kb must be between 64 and 25600"},
		"huge webhook body":       {file: `{"max_webhook_kb": 1048576}`, want: "--max-webhook-kb"},
		"webhook kb not a number": {env: map[string]string{"BERTH_MAX_WEBHOOK_KB": "5MB"}, want: "BERTH_MAX_WEBHOOK_KB"},
		"zero webhook rate":       {env: map[string]string{"BERTH_WEBHOOK_RATE": "0"}, want: "--webhook-rate"},
		"negative addr rate":      {env: map[string]string{"BERTH_WEBHOOK_ADDR_RATE": "-1"}, want: "--webhook-addr-rate"},
		"relative public URL":     {env: map[string]string{"BERTH_PUBLIC_URL": "berth.example.com"}, want: "--public-url"},
		"bad trusted proxy":       {env: map[string]string{"BERTH_TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, want: "--trusted-proxies"},
		"oidc without client":     {env: map[string]string{"BERTH_OIDC_ISSUER": "https://idp.example.com", "BERTH_PUBLIC_URL": "https://b.example.com"}, want: "--oidc-client-id"},
		"oidc without public URL": {env: map[string]string{"BERTH_OIDC_ISSUER": "https://idp.example.com", "BERTH_OIDC_CLIENT_ID": "berth"}, want: "--public-url"},
	} {
		t.Run(name, func(t *testing.T) {
			file := ""
			if tc.file != "" {
				file = filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
				if err := os.WriteFile(file, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := resolveServerConfig(newServerCmd().Flags(), file, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestSecretsKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secret.key")
	k1, err := loadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := loadOrCreateKey(p)
	if err != nil || string(k1) != string(k2) || len(k1) != 32 {
		t.Fatalf("reload: %v, same=%v len=%d", err, string(k1) == string(k2), len(k1))
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateKey(p); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("a world-readable key was accepted: %v", err)
	}
}

func TestPreviewURL(t *testing.T) {
	for _, c := range []struct {
		listen, https, want string
	}{
		{":80", "", "http://pr-7.example.com"},
		{"127.0.0.1:8000", "", "http://pr-7.example.com:8000"},
		{":80", ":443", "https://pr-7.example.com"},
		{":80", "0.0.0.0:8443", "https://pr-7.example.com:8443"},
	} {
		cfg := defaultServerConfig()
		cfg.ProxyListen, cfg.ProxyHTTPS = c.listen, c.https
		if got := previewURL(cfg)("pr-7.example.com"); got != c.want {
			t.Errorf("listen %q https %q: %s, want %s", c.listen, c.https, got, c.want)
		}
	}
}
