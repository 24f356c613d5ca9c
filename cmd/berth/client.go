package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth/api"
)

// globals are the flags every client command shares.
type globals struct {
	sys    stdio
	server string
	token  string
	output string
}

// addGlobals declares the global flags on root.
func addGlobals(root *cobra.Command, sys stdio) *globals {
	g := &globals{sys: sys}
	f := root.PersistentFlags()
	f.StringVar(&g.server, "server", "", "URL of the berth server (env BERTH_SERVER; default from berth login)")
	f.StringVar(&g.token, "token", "", "API token (env BERTH_TOKEN; default from berth login)")
	f.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	return g
}

// checkOutput refuses an unknown output format.
func (g *globals) checkOutput() error {
	if g.output != "table" && g.output != "json" {
		return fmt.Errorf("unknown output format %q: use table or json", g.output)
	}
	return nil
}

func (g *globals) json() bool { return g.output == "json" }

// clientConfig is the file written by berth login.
type clientConfig struct {
	Server string `json:"server"`
	Token  string `json:"token"`
}

// configPath is $XDG_CONFIG_HOME/berth/config.json, or
// ~/.config/berth/config.json.
func (g *globals) configPath() (string, error) {
	dir := g.sys.getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := g.sys.getenv("HOME")
		if home == "" {
			return "", errors.New("cannot find the config directory: set HOME or XDG_CONFIG_HOME")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "berth", "config.json"), nil
}

func (g *globals) loadConfig() (clientConfig, error) {
	var cfg clientConfig
	p, err := g.configPath()
	if err != nil {
		return cfg, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("read config %s: %w", p, err)
	}
	return cfg, nil
}

// saveConfig writes the config file readable by its owner only.
func (g *globals) saveConfig(cfg clientConfig) (string, error) {
	p, err := g.configPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("create config directory: %w", err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".config-*.json")
	if err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write config: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return "", fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return p, nil
}

// endpoint resolves the server URL and token: flags, then environment, then
// the config file.
func (g *globals) endpoint() (server, token string, err error) {
	server, token = g.server, g.token
	if server == "" {
		server = g.sys.getenv("BERTH_SERVER")
	}
	if token == "" {
		token = g.sys.getenv("BERTH_TOKEN")
	}
	if server == "" || token == "" {
		cfg, err := g.loadConfig()
		if err != nil {
			return "", "", err
		}
		if server == "" {
			server = cfg.Server
		}
		if token == "" {
			token = cfg.Token
		}
	}
	if server == "" {
		return "", "", errors.New("no server: run berth login URL --token TOKEN, or pass --server (env BERTH_SERVER)")
	}
	if err := checkServerURL(server); err != nil {
		return "", "", err
	}
	if token == "" {
		return "", "", errors.New("no token: run berth login URL --token TOKEN, or pass --token (env BERTH_TOKEN)")
	}
	return server, token, nil
}

// client returns an API client for the resolved server and token.
func (g *globals) client() (*api.Client, error) {
	if err := g.checkOutput(); err != nil {
		return nil, err
	}
	server, token, err := g.endpoint()
	if err != nil {
		return nil, err
	}
	return api.NewClient(server, token, nil), nil
}

// checkServerURL accepts http and https URLs with a host.
func checkServerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("server %q: use a URL such as https://berth.example.com", s)
	}
	return nil
}

// printJSON writes v as indented JSON.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.sys.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes rows aligned in columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(toAny(header)...)
	}
	return t
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (t *table) row(cols ...any) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(fmt.Sprint(c))
		if parts[i] == "" {
			parts[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// age says how long ago t was, briefly: "42s", "5m", "3h", "12d".
func age(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// seconds formats a duration for people: "0.4s", "12.3s", "2m5s".
func seconds(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// short shortens a commit or image ID for tables.
func short(s string) string {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) > 12 && !strings.ContainsAny(s, ":/") {
		return s[:7]
	}
	return s
}
