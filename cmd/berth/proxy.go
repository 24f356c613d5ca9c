package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth/proxy"
)

// newProxyCmd returns `berth proxy`, which runs the edge until SIGTERM.
func newProxyCmd() *cobra.Command {
	cfg := proxy.Config{
		HTTPAddr:    envOr("BERTH_PROXY_HTTP", ":80"),
		HTTPSAddr:   os.Getenv("BERTH_PROXY_HTTPS"),
		AdminSocket: "/state/admin.sock",
		StateDir:    "/state",
		ACME: proxy.ACMEConfig{
			Email:  os.Getenv("BERTH_ACME_EMAIL"),
			CA:     os.Getenv("BERTH_ACME_CA"),
			CARoot: os.Getenv("BERTH_ACME_CA_ROOT"),
		},
	}
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the berth proxy (the edge)",
		Long: "Run the berth proxy: it routes HTTP requests by Host header to the live containers\n" +
			"of each app, serves from its last saved routing table while the control plane is\n" +
			"down, and takes route changes, health checks, drains and certificates on its admin\n" +
			"unix socket. With --https-listen it serves HTTPS with a certificate per routed host,\n" +
			"obtained and renewed through ACME (Let's Encrypt by default) or uploaded, and\n" +
			"redirects plain HTTP to HTTPS once a host has one.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Log = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			return proxy.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.HTTPAddr, "listen", cfg.HTTPAddr, "address of the public HTTP listener (env BERTH_PROXY_HTTP)")
	f.StringVar(&cfg.HTTPSAddr, "https-listen", cfg.HTTPSAddr, "address of the public HTTPS listener, such as :443; empty turns TLS off (env BERTH_PROXY_HTTPS)")
	f.StringVar(&cfg.ACME.Email, "acme-email", cfg.ACME.Email, "contact email of the ACME account (env BERTH_ACME_EMAIL)")
	f.StringVar(&cfg.ACME.CA, "acme-ca", cfg.ACME.CA, "ACME directory URL; Let's Encrypt production when empty (env BERTH_ACME_CA)")
	f.StringVar(&cfg.ACME.CARoot, "acme-ca-root", cfg.ACME.CARoot, "PEM bundle of roots to trust for the ACME CA's own HTTPS (env BERTH_ACME_CA_ROOT)")
	f.StringVar(&cfg.AdminSocket, "admin-socket", cfg.AdminSocket, "path of the admin API's unix socket")
	f.StringVar(&cfg.StateDir, "state", cfg.StateDir, "directory holding the saved routing table and certificates")
	return cmd
}

// envOr returns the environment variable key, or def when it is empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
