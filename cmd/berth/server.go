package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/build"
	"github.com/berthhq/berth/docker"
	"github.com/berthhq/berth/egress"
	"github.com/berthhq/berth/engine"
	"github.com/berthhq/berth/git"
	"github.com/berthhq/berth/metrics"
	"github.com/berthhq/berth/proxy"
	"github.com/berthhq/berth/queue"
	"github.com/berthhq/berth/store"
	"github.com/berthhq/berth/web"
)

// serverConfig is every setting of `berth server`. Precedence: flags, then
// BERTH_* environment variables, then the JSON file named by --config, then
// the defaults below.
type serverConfig struct {
	Data          string
	Listen        string
	ProxyListen   string
	ProxyHTTPS    string
	ACMEEmail     string
	ACMECA        string
	ReplaceProxy  bool
	Database      string
	DockerHost    string
	Network       string
	AllowLocalGit bool
	// AllowPrivateEgress lets users' URLs (git remotes, later webhooks)
	// reach loopback, private and link-local addresses.
	AllowPrivateEgress bool
	MaxBuilds          int
	BuildTimeout       time.Duration
	BuildMemoryMB      int64
	BuildCPUs          float64
	DrainTimeout       time.Duration
	StopGrace          time.Duration
	KeepReleases       int
	KeepLogs           int
	Reconcile          time.Duration
	MetricsEvery       time.Duration
	LogLevel           string
	// Hosted git remotes.
	MaxPushMB int64
	GitRate   int
	// Webhooks.
	MaxWebhookKB    int64
	WebhookRate     int
	WebhookAddrRate int
	// Sign-in.
	PublicURL        string
	TrustedProxies   string
	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
}

func defaultServerConfig() serverConfig {
	return serverConfig{
		Data:          "data",
		Listen:        "127.0.0.1:3000",
		ProxyListen:   ":8000",
		Network:       "berth",
		MaxBuilds:     1,
		BuildTimeout:  30 * time.Minute,
		BuildMemoryMB: 2048,
		DrainTimeout:  30 * time.Second,
		StopGrace:     10 * time.Second,
		KeepReleases:  10,
		KeepLogs:      100,
		Reconcile:     30 * time.Second,
		MetricsEvery:  metrics.DefaultEvery,
		MaxPushMB:     api.DefaultMaxPushBody >> 20,
		GitRate:       api.DefaultGitRequestsRate,
		// Webhooks.
		MaxWebhookKB:    api.DefaultMaxWebhookBody >> 10,
		WebhookRate:     api.DefaultWebhookRate,
		WebhookAddrRate: api.DefaultWebhookAddrRate,
		LogLevel:        "info",
	}
}

// serverFlag binds one setting to its flag and environment variable.
type serverFlag struct {
	name, env, usage string
	ptr              any // *string, *bool, *int, *int64, *float64 or *time.Duration
}

func serverFlags(c *serverConfig) []serverFlag {
	return []serverFlag{
		{"data", "BERTH_DATA", "data directory (store, keys, proxy state)", &c.Data},
		{"listen", "BERTH_LISTEN", "address of the API and dashboard", &c.Listen},
		{"proxy-listen", "BERTH_PROXY_LISTEN", "host address the proxy publishes for app traffic (use :80 on a server)", &c.ProxyListen},
		{"proxy-https-listen", "BERTH_PROXY_HTTPS_LISTEN", "host address the proxy publishes for HTTPS with automatic certificates (e.g. :443); empty = no TLS", &c.ProxyHTTPS},
		{"acme-email", "BERTH_ACME_EMAIL", "contact e-mail for the ACME account (Let's Encrypt)", &c.ACMEEmail},
		{"acme-ca", "BERTH_ACME_CA", "ACME directory URL; default Let's Encrypt production", &c.ACMECA},
		{"replace-proxy", "BERTH_REPLACE_PROXY", "replace the running proxy container with one of this build (app traffic pauses for a few seconds)", &c.ReplaceProxy},
		{"database", "BERTH_DATABASE_URL", "postgres:// URL; default a SQLite file in the data directory", &c.Database},
		{"docker-host", "BERTH_DOCKER_HOST", "Docker Engine address; default the local unix socket", &c.DockerHost},
		{"network", "BERTH_NETWORK", "Docker network for apps and the proxy", &c.Network},
		{"allow-local-git", "BERTH_ALLOW_LOCAL_GIT", "accept local repository paths as git sources", &c.AllowLocalGit},
		{"allow-private-egress", "BERTH_ALLOW_PRIVATE_EGRESS", "let users' URLs (git remotes) reach loopback, private and link-local addresses; --allow-local-git implies it for git", &c.AllowPrivateEgress},
		{"max-builds", "BERTH_MAX_BUILDS", "builds that may run at once", &c.MaxBuilds},
		{"build-timeout", "BERTH_BUILD_TIMEOUT", "longest a build may take", &c.BuildTimeout},
		{"build-memory-mb", "BERTH_BUILD_MEMORY_MB", "memory limit of a build, MB (0 = none)", &c.BuildMemoryMB},
		{"build-cpus", "BERTH_BUILD_CPUS", "CPU limit of a build (0 = none)", &c.BuildCPUs},
		{"drain-timeout", "BERTH_DRAIN_TIMEOUT", "longest wait for in-flight requests to an old release before it is stopped", &c.DrainTimeout},
		{"stop-grace", "BERTH_STOP_GRACE", "time between SIGTERM and SIGKILL when a container stops", &c.StopGrace},
		{"keep-releases", "BERTH_KEEP_RELEASES", "releases per app whose images are kept for rollbacks", &c.KeepReleases},
		{"keep-logs", "BERTH_KEEP_LOGS", "deployments per app whose build logs are kept", &c.KeepLogs},
		{"reconcile-every", "BERTH_RECONCILE_EVERY", "how often running containers are compared with the store and repaired", &c.Reconcile},
		{"metrics-every", "BERTH_METRICS_EVERY", "how often each app's CPU, memory and network use is sampled into the store", &c.MetricsEvery},
		{"log-level", "BERTH_LOG_LEVEL", "debug, info, warn or error", &c.LogLevel},
		{"max-push-mb", "BERTH_MAX_PUSH_MB", "largest git push to a hosted remote (/git/APP.git), MB", &c.MaxPushMB},
		{"git-rate", "BERTH_GIT_RATE", "requests to the hosted git remotes allowed per minute, per client address and per token", &c.GitRate},
		{"max-webhook-kb", "BERTH_MAX_WEBHOOK_KB", "largest webhook payload, KiB (64 to 25600)", &c.MaxWebhookKB},
		{"webhook-rate", "BERTH_WEBHOOK_RATE", "webhook requests allowed per minute to each app", &c.WebhookRate},
		{"webhook-addr-rate", "BERTH_WEBHOOK_ADDR_RATE", "webhook requests allowed per minute from each client address, to any app", &c.WebhookAddrRate},
		{"public-url", "BERTH_PUBLIC_URL", "URL browsers reach berth at (https://berth.example.com): OIDC redirects go there; session cookies lose Secure only when it is http://", &c.PublicURL},
		{"trusted-proxies", "BERTH_TRUSTED_PROXIES", "comma-separated addresses/CIDRs of reverse proxies whose X-Forwarded-For names the client", &c.TrustedProxies},
		{"oidc-issuer", "BERTH_OIDC_ISSUER", "OpenID Connect provider's issuer URL; empty = no OIDC sign-in", &c.OIDCIssuer},
		{"oidc-client-id", "BERTH_OIDC_CLIENT_ID", "OIDC client ID", &c.OIDCClientID},
		{"oidc-client-secret", "BERTH_OIDC_CLIENT_SECRET", "OIDC client secret (prefer the environment variable to the flag)", &c.OIDCClientSecret},
	}
}

func newServerCmd() *cobra.Command {
	cfg := defaultServerConfig()
	var configFile string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the berth control plane (API, dashboard, deploy engine) and its proxy",
		Long: `Run the berth control plane. On first start with an empty store it writes a
one-time admin bootstrap token to DATA/bootstrap-token (mode 0600) and prints it.
Settings come from flags, then BERTH_* environment variables, then --config FILE (JSON).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			final, err := resolveServerConfig(cmd.Flags(), configFile, os.LookupEnv)
			if err != nil {
				return err
			}
			return runServer(cmd.Context(), final, cmd.OutOrStdout())
		},
	}
	cmd.AddCommand(newRotateKeyCmd())
	fs := cmd.Flags()
	fs.StringVar(&configFile, "config", os.Getenv("BERTH_CONFIG"), "JSON settings file (env BERTH_CONFIG)")
	for _, f := range serverFlags(&cfg) {
		usage := f.usage + " (env " + f.env + ")"
		switch p := f.ptr.(type) {
		case *string:
			fs.String(f.name, *p, usage)
		case *bool:
			fs.Bool(f.name, *p, usage)
		case *int:
			fs.Int(f.name, *p, usage)
		case *int64:
			fs.Int64(f.name, *p, usage)
		case *float64:
			fs.Float64(f.name, *p, usage)
		case *time.Duration:
			fs.Duration(f.name, *p, usage)
		}
	}
	return cmd
}

// Bounds of --max-webhook-kb: a push payload with a few commits already
// takes some KiB, and providers send at most 25 MiB (GitHub drops larger
// payloads); the whole body is read before its signature is checked.
const (
	minWebhookKB = 64
	maxWebhookKB = 25 << 10
)

// webhookLimits are the settings' bounds of the webhook endpoint.
func (c serverConfig) webhookLimits() api.WebhookLimits {
	return api.WebhookLimits{MaxBody: c.MaxWebhookKB << 10, PerApp: c.WebhookRate, PerAddr: c.WebhookAddrRate, Window: time.Minute}
}

// resolveServerConfig applies defaults, the file, the environment and the
// flags that were set, in that order.
func resolveServerConfig(fs *pflag.FlagSet, file string, env func(string) (string, bool)) (serverConfig, error) {
	cfg := defaultServerConfig()
	if file != "" {
		if err := applyConfigFile(&cfg, file); err != nil {
			return cfg, err
		}
	}
	for _, f := range serverFlags(&cfg) {
		val, fromEnv := env(f.env)
		if fl := fs.Lookup(f.name); fl != nil && fl.Changed {
			val, fromEnv = fl.Value.String(), true
		}
		if !fromEnv {
			continue
		}
		if err := setValue(f.ptr, val); err != nil {
			return cfg, fmt.Errorf("%s / --%s: %w", f.env, f.name, err)
		}
	}
	if cfg.MaxBuilds < 1 {
		return cfg, errors.New("--max-builds must be at least 1")
	}
	if cfg.KeepReleases < 1 {
		return cfg, errors.New("--keep-releases must be at least 1")
	}
	if cfg.KeepLogs < 1 {
		return cfg, errors.New("--keep-logs must be at least 1")
	}
	if cfg.Reconcile < time.Second {
		return cfg, errors.New("--reconcile-every must be at least 1s")
	}
	if cfg.MetricsEvery < time.Second {
		return cfg, errors.New("--metrics-every must be at least 1s")
	}
	if cfg.MaxPushMB < 1 {
		return cfg, errors.New("--max-push-mb must be at least 1")
	}
	if cfg.GitRate < 1 {
		return cfg, errors.New("--git-rate must be at least 1")
	}
	if cfg.MaxWebhookKB < minWebhookKB || cfg.MaxWebhookKB > maxWebhookKB {
		return cfg, fmt.Errorf("--max-webhook-kb must be between %d and %d (25 MiB, the most GitHub sends)", minWebhookKB, maxWebhookKB)
	}
	if cfg.WebhookRate < 1 {
		return cfg, errors.New("--webhook-rate must be at least 1")
	}
	if cfg.WebhookAddrRate < 1 {
		return cfg, errors.New("--webhook-addr-rate must be at least 1")
	}
	if err := checkSignInConfig(cfg); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// applyConfigFile reads a JSON object whose keys are the flag names in
// snake_case ("proxy_listen": ":80", "build_timeout": "10m").
func applyConfigFile(cfg *serverConfig, file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("config %s: want a JSON object: %w", file, err)
	}
	flags := map[string]serverFlag{}
	for _, f := range serverFlags(cfg) {
		flags[strings.ReplaceAll(f.name, "-", "_")] = f
	}
	for key, v := range raw {
		f, ok := flags[key]
		if !ok {
			return fmt.Errorf("config %s: unknown setting %q", file, key)
		}
		var val string
		if json.Unmarshal(v, &val) != nil {
			val = string(v) // a number or a boolean
		}
		if err := setValue(f.ptr, val); err != nil {
			return fmt.Errorf("config %s: %s: %w", file, key, err)
		}
	}
	return nil
}

func setValue(ptr any, s string) error {
	var err error
	switch p := ptr.(type) {
	case *string:
		*p = s
	case *bool:
		*p, err = strconv.ParseBool(s)
	case *int:
		*p, err = strconv.Atoi(s)
	case *int64:
		*p, err = strconv.ParseInt(s, 10, 64)
	case *float64:
		*p, err = strconv.ParseFloat(s, 64)
	case *time.Duration:
		*p, err = time.ParseDuration(s)
	}
	return err
}

// runServer runs the control plane until ctx ends.
func runServer(ctx context.Context, cfg serverConfig, stdout io.Writer) error {
	log := newLogger(cfg.LogLevel)
	data, err := filepath.Abs(cfg.Data)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockData(data) // keeps rotate-key out while the server runs
	if err != nil {
		return err
	}
	defer unlock()
	dsn := cfg.Database
	if dsn == "" {
		dsn = filepath.Join(data, "berth.db")
	}
	st, err := openStore(ctx, dsn, data, log) // settles an interrupted key rotation
	if err != nil {
		return err
	}
	defer st.Close()

	instance, err := instanceID(ctx, st)
	if err != nil {
		return err
	}
	log = log.With("instance", instance)
	if secret, err := auth.Bootstrap(ctx, st, time.Now()); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	} else if secret != "" {
		p := filepath.Join(data, "bootstrap-token")
		if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
			return fmt.Errorf("write bootstrap token: %w", err)
		}
		fmt.Fprintf(stdout, "bootstrap admin token (also in %s):\n  %s\n", p, secret)
	}

	dk, err := docker.New(cfg.DockerHost, log)
	if err != nil {
		return err
	}
	defer dk.Close()
	if err := dk.Ping(ctx); err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	builder := build.New(dk, log, build.Options{})

	// Jobs leased by an earlier process of this instance are dead: take
	// them over now rather than when their leases run out.
	owner := instance + "/" + berth.NewID("w")
	if n, err := st.ExpireLeases(ctx, instance+"/", owner, time.Now()); err != nil {
		return fmt.Errorf("recover jobs: %w", err)
	} else if n > 0 {
		log.Info("taking over jobs of the previous process", "jobs", n)
	}
	q := queue.New(st, queue.Config{Log: log, Owner: owner})
	router := proxy.NewClient(filepath.Join(data, "proxy", "admin.sock"))
	// Git may reach private addresses when asked to, or when it may read
	// local paths anyway (--allow-local-git: a single-machine setup).
	gitEgress := egress.Policy{AllowPrivate: cfg.AllowPrivateEgress || cfg.AllowLocalGit}
	fetcher := &git.Fetcher{AllowLocal: cfg.AllowLocalGit, Egress: gitEgress, Log: log}
	eng, err := engine.New(engine.Config{
		Store: st, Queue: q, Log: log,
		Source:  fetcher,
		Builder: builder, Runtime: dk, Router: router,
		WorkDir: filepath.Join(data, "work"), Network: cfg.Network, Instance: instance,
		Proxy:     proxyLabels(instance),
		MaxBuilds: cfg.MaxBuilds, BuildTimeout: cfg.BuildTimeout,
		BuildMemory: cfg.BuildMemoryMB << 20, BuildCPUs: cfg.BuildCPUs,
		DrainTimeout: cfg.DrainTimeout, StopGrace: cfg.StopGrace, KeepReleases: cfg.KeepReleases,
		KeepLogs: cfg.KeepLogs,
		// Commit statuses of previews go to users' provider APIs: only
		// where users' URLs may go.
		Statuses:   git.NewStatuses(egress.Policy{AllowPrivate: cfg.AllowPrivateEgress}, 15*time.Second),
		PreviewURL: previewURL(cfg),
	})
	if err != nil {
		return err
	}
	if err := eng.Prepare(ctx); err != nil {
		return fmt.Errorf("prepare docker: %w", err)
	}
	if err := startProxy(ctx, dk, builder, router, cfg, data, instance, log); err != nil {
		return err
	}
	if err := eng.ConnectProxy(ctx); err != nil {
		return err
	}

	proxies, _ := auth.ParseTrustedProxies(cfg.TrustedProxies) // checked by resolveServerConfig
	apiCfg := api.Config{Store: st, Engine: eng, Log: log, AllowLocalGit: cfg.AllowLocalGit, Egress: gitEgress,
		TrustedProxies: proxies, PublicURL: strings.TrimRight(cfg.PublicURL, "/"),
		InsecureCookies: strings.HasPrefix(cfg.PublicURL, "http://"),
		// Bitbucket abbreviates a pull request's head commit: the webhook
		// asks the repository for the full one.
		LsRemote: fetcher.LsRemote,
		// Pull request webhooks deploy and tear down preview environments.
		Previews: eng}
	if cfg.OIDCIssuer != "" {
		apiCfg.OIDC = &auth.OIDCConfig{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret}
	}
	apiCfg.Health = api.HealthProbe{Docker: dk.Ping, DataDir: data}
	// Hosted git remotes: bare repositories under DATA/git/repos; git runs
	// this very binary as the pre-receive hook of a push.
	exe, err := hookProgram()
	if err != nil {
		return err
	}
	apiCfg.GitDir, apiCfg.GitHook = filepath.Join(data, "git", "repos"), exe
	apiCfg.MaxPush, apiCfg.GitRate = cfg.MaxPushMB<<20, cfg.GitRate
	apiCfg.Webhooks = cfg.webhookLimits()
	apiSrv := api.New(apiCfg)
	apiHandler := apiSrv.Handler()
	mux := http.NewServeMux()
	mux.Handle("/api/", api.SecureHeaders(apiHandler))
	mux.Handle("/healthz", api.SecureHeaders(apiHandler))
	mux.Handle("/git/", api.SecureHeaders(apiHandler))
	// Metrics: the sampler runs with the workers below; /metrics shows a
	// sample until three sampling periods have passed without a newer one.
	sampler := metrics.New(metrics.Config{Store: st, Runtime: dk, Instance: instance, Every: cfg.MetricsEvery, Log: log})
	mux.Handle("GET /metrics", api.SecureHeaders(apiSrv.PrometheusHandler(3*cfg.MetricsEvery)))
	mux.Handle("/", api.SecurePageHeaders(web.New(web.Config{API: apiHandler, Log: log, OIDC: apiCfg.OIDC != nil}).Handler()))
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := api.NewHTTPServer(mux) // header, body and timeout limits

	qctx, stopQueue := context.WithCancel(ctx)
	var workers sync.WaitGroup
	workers.Go(func() { q.Run(qctx) })
	workers.Go(func() { eng.RunReconciler(qctx, cfg.Reconcile) })
	workers.Go(func() { auth.CollectSessions(qctx, st, 10*time.Minute, log) })
	workers.Go(func() { sampler.Run(qctx) })
	workers.Go(func() { eng.RunPreviewSweeper(qctx, time.Minute) })

	fmt.Fprintf(stdout, "berth server: API and dashboard on http://%s, proxy on %s, data in %s\n", ln.Addr(), cfg.ProxyListen, data)
	log.Info("server started", "listen", ln.Addr().String(), "proxy", cfg.ProxyListen, "store", st.Dialect())
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err = <-serveErr:
	case <-ctx.Done():
	}
	log.Info("server stopping")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	stopQueue()
	workers.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// previewURL returns how browsers reach a preview's host through the
// proxy: https when it serves TLS, and the published port unless it is the
// scheme's default.
func previewURL(cfg serverConfig) func(host string) string {
	scheme, listen, std := "http", cfg.ProxyListen, "80"
	if cfg.ProxyHTTPS != "" {
		scheme, listen, std = "https", cfg.ProxyHTTPS, "443"
	}
	port := std
	if _, p, err := net.SplitHostPort(listen); err == nil && p != "" {
		port = p
	}
	return func(host string) string {
		if port == std {
			return scheme + "://" + host
		}
		return scheme + "://" + net.JoinHostPort(host, port)
	}
}

// hookProgram is the program git runs as the pre-receive hook of a push to
// a hosted remote: this very binary, through /proc/PID/exe where there is
// one, so that the hook speaks the running server's protocol even after the
// file on disk was replaced by an upgrade (the server runs on until it is
// restarted); its path otherwise.
func hookProgram() (string, error) {
	self := fmt.Sprintf("/proc/%d/exe", os.Getpid())
	if _, err := os.Stat(self); err == nil {
		return self, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find own binary: %w", err)
	}
	return exe, nil
}

// proxyLabels are the labels of the proxy container of a berth instance.
func proxyLabels(instance string) map[string]string {
	return map[string]string{berth.LabelManaged: "true", berth.LabelInstance: instance, berth.LabelRole: "proxy"}
}

// startProxy makes sure berth's proxy container runs the image built from
// this very binary, publishing cfg.ProxyListen, and answers on its admin
// socket. A proxy that already runs the same image is left alone, so that
// restarting the control plane never interrupts app traffic.
func startProxy(ctx context.Context, dk *docker.Engine, b *build.Builder, router *proxy.Client, cfg serverConfig, data, instance string, log *slog.Logger) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	if err := checkStatic(exe); err != nil {
		return err
	}
	sum, err := fileSHA256(exe)
	if err != nil {
		return err
	}
	tag := "berth-proxy:" + sum[:16]
	labels := proxyLabels(instance)
	if ok, err := dk.ImageExists(ctx, tag); err != nil {
		return err
	} else if !ok {
		log.Info("building proxy image", "tag", tag)
		if _, err := b.BinaryImage(ctx, exe, tag, labels); err != nil {
			return fmt.Errorf("build proxy image: %w", err)
		}
	}
	host, port, err := net.SplitHostPort(cfg.ProxyListen)
	if err != nil {
		return fmt.Errorf("--proxy-listen %q: %w", cfg.ProxyListen, err)
	}
	hostPort, err := strconv.Atoi(port)
	if err != nil || hostPort < 1 || hostPort > 65535 {
		return fmt.Errorf("--proxy-listen %q: bad port", cfg.ProxyListen)
	}
	stateDir := filepath.Join(data, "proxy")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("proxy state: %w", err)
	}
	cmd := []string{"proxy", "--listen", ":80", "--admin-socket", "/state/admin.sock", "--state", "/state"}
	ports := []docker.Port{{HostIP: host, HostPort: hostPort, ContainerPort: 80}}
	if cfg.ProxyHTTPS != "" {
		h, p, err := net.SplitHostPort(cfg.ProxyHTTPS)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil || n < 1 || n > 65535 {
			return fmt.Errorf("--proxy-https-listen %q: want HOST:PORT such as :443", cfg.ProxyHTTPS)
		}
		ports = append(ports, docker.Port{HostIP: h, HostPort: n, ContainerPort: 443})
		cmd = append(cmd, "--https-listen", ":443")
		if cfg.ACMEEmail != "" {
			cmd = append(cmd, "--acme-email", cfg.ACMEEmail)
		}
		if cfg.ACMECA != "" {
			cmd = append(cmd, "--acme-ca", cfg.ACMECA)
		}
	}
	// The container is replaced only when its settings change, or when
	// asked to (--replace-proxy): a new berth binary alone does not replace
	// it, so that upgrading the control plane never interrupts traffic.
	fingerprint := configHash(strings.Join(append([]string{cfg.ProxyListen, cfg.ProxyHTTPS}, cmd...), "\x00"))
	cs, err := dk.Containers(ctx, labels)
	if err != nil {
		return err
	}
	keep := false
	for _, c := range cs {
		if c.Running() && c.Labels["berth.proxy.config"] == fingerprint && !keep && !cfg.ReplaceProxy {
			keep = true
			if c.Labels["berth.proxy.image"] != tag {
				log.Warn("the proxy runs an image of another berth build; restart the server once with --replace-proxy to update it (a few seconds without app traffic)",
					"running", c.Labels["berth.proxy.image"], "current", tag)
			}
			continue
		}
		log.Info("replacing proxy container", "container", c.Name)
		if err := dk.Remove(ctx, c.ID, 10*time.Second); err != nil {
			return err
		}
	}
	if !keep {
		svcLabels := map[string]string{"berth.proxy.image": tag, "berth.proxy.listen": cfg.ProxyListen, "berth.proxy.config": fingerprint}
		for k, v := range labels {
			svcLabels[k] = v
		}
		_, err := dk.RunService(ctx, docker.ServiceSpec{
			Name:    "berth-proxy-" + instance[len(instance)-8:],
			Image:   tag,
			Cmd:     cmd,
			Labels:  svcLabels,
			Network: cfg.Network,
			Ports:   ports,
			Binds:   []docker.Bind{{Source: stateDir, Target: "/state"}},
		})
		if err != nil {
			return fmt.Errorf("start proxy: %w", err)
		}
		log.Info("proxy started", "image", tag, "listen", cfg.ProxyListen)
	}
	collectProxyImages(ctx, dk, labels, tag, log)
	deadline := time.Now().Add(30 * time.Second)
	for {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := router.Health(hctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proxy did not answer on its admin socket within 30s: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// collectProxyImages removes the proxy images of other builds of this
// instance that no container runs (every upgrade leaves one behind). The
// image of this build, current, stays for a later --replace-proxy.
func collectProxyImages(ctx context.Context, dk *docker.Engine, labels map[string]string, current string, log *slog.Logger) {
	imgs, err := dk.Images(ctx, labels)
	if err != nil {
		log.Warn("list proxy images", "err", err)
		return
	}
	cs, err := dk.Containers(ctx, labels)
	if err != nil {
		log.Warn("list proxy containers", "err", err)
		return
	}
	inUse := map[string]bool{current: true} // by the reference it was run with: a tag or an ID
	for _, c := range cs {
		inUse[c.Image] = true
	}
	for _, img := range imgs {
		if inUse[img.ID] || slices.ContainsFunc(img.Tags, func(t string) bool { return inUse[t] }) {
			continue
		}
		refs := img.Tags
		if len(refs) == 0 {
			refs = []string{img.ID}
		}
		for _, ref := range refs {
			if err := dk.RemoveImage(ctx, ref); err != nil && !berth.IsKind(err, berth.Conflict) {
				log.Warn("remove old proxy image", "image", ref, "err", err)
			}
		}
	}
}

// checkStatic refuses a dynamically linked binary: the proxy image is
// FROM scratch and holds nothing but this file.
func checkStatic(exe string) error {
	f, err := elf.Open(exe)
	if err != nil {
		return fmt.Errorf("inspect own binary: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("this berth binary is dynamically linked; the proxy image needs a static one: build with CGO_ENABLED=0 (make build)")
		}
	}
	return nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// configHash is a short hash of the proxy container's settings.
func configHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// loadOrCreateKey reads the 32-byte secrets key, creating it (mode 0600) on
// first start. A key file readable by others is refused.
func loadOrCreateKey(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create secrets key: %w", err)
		}
		if _, err := f.Write([]byte(hex.EncodeToString(key) + "\n")); err != nil {
			f.Close()
			return nil, fmt.Errorf("write secrets key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write secrets key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read secrets key: %w", err)
	}
	if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secrets key %s is readable by others (mode %v): chmod 600 it", p, fi.Mode().Perm())
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("secrets key %s: want 64 hex characters", p)
	}
	return key, nil
}

// instanceID returns this installation's ID, made on first start.
func instanceID(ctx context.Context, st *store.Store) (string, error) {
	id, err := st.Setting(ctx, "instance_id")
	if err == nil && id != "" {
		return id, nil
	}
	if err != nil && !berth.IsKind(err, berth.NotFound) {
		return "", fmt.Errorf("read instance id: %w", err)
	}
	id = berth.NewID("inst")
	if err := st.SetSetting(ctx, "instance_id", id); err != nil {
		return "", fmt.Errorf("write instance id: %w", err)
	}
	return id, nil
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// checkSignInConfig checks the sign-in settings: a public URL that is an
// absolute http(s) URL, trusted proxies that parse, and an OIDC provider
// only with a client ID and a public URL to return to.
func checkSignInConfig(cfg serverConfig) error {
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("--public-url %q: want an absolute http(s) URL such as https://berth.example.com", cfg.PublicURL)
		}
	}
	if _, err := auth.ParseTrustedProxies(cfg.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if cfg.OIDCIssuer != "" {
		if u, err := url.Parse(cfg.OIDCIssuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("--oidc-issuer %q: want the provider's issuer URL", cfg.OIDCIssuer)
		}
		if cfg.OIDCClientID == "" {
			return errors.New("--oidc-issuer needs --oidc-client-id")
		}
		if cfg.PublicURL == "" {
			return errors.New("--oidc-issuer needs --public-url, where the provider sends browsers back")
		}
	}
	return nil
}
