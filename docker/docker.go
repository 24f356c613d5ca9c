// Package docker is berth's single-host runtime: it runs, lists, stops and
// reads the logs of containers, and manages the networks, volumes and images
// they use, through the Docker Engine HTTP API (never the docker CLI). It
// works with any Engine speaking API 1.41 (Docker 20.10) or later; the API
// version is negotiated on the first request.
//
// Every name, reference and path that reaches the Engine is checked here
// first, so a hostile value is rejected with a berth.Invalid error instead of
// reaching an API path or a container's configuration.
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/berthhq/berth"
)

// DefaultHost is the Engine address used when New is given none.
const DefaultHost = client.DefaultDockerHost

// Engine is a connection to one Docker Engine. It is safe for concurrent use.
type Engine struct {
	cli  *client.Client
	host string
	log  *slog.Logger

	// netMu serializes EnsureNetwork within the Engine; across Engines and
	// processes the duplicates Docker 20.10 allows are resolved afterwards.
	netMu sync.Mutex
}

// New connects to the Engine at host ("unix:///var/run/docker.sock",
// "tcp://127.0.0.1:2375"…; "" means DefaultHost). It does not contact the
// Engine: call Ping to check that it answers.
func New(host string, log *slog.Logger) (*Engine, error) {
	if host == "" {
		host = DefaultHost
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		return nil, berth.Wrap("connect docker", berth.Invalid, fmt.Errorf("docker host %q: %w", host, err))
	}
	return &Engine{cli: cli, host: host, log: log.With("docker_host", host)}, nil
}

// Close releases the Engine's idle connections.
func (e *Engine) Close() error { return e.cli.Close() }

// Client returns the underlying Engine API client, for packages (such as
// build) that need calls this package does not wrap.
func (e *Engine) Client() *client.Client { return e.cli }

// Host returns the Engine's address.
func (e *Engine) Host() string { return e.host }

// Ping checks that the Engine answers and negotiates the API version. An
// unreachable Engine is a berth.Unavailable error.
func (e *Engine) Ping(ctx context.Context) error {
	if _, err := e.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return &berth.Error{Op: "ping docker", Kind: berth.Unavailable,
			Msg: fmt.Sprintf("the Docker engine at %s does not answer; is it running?", e.host), Err: err}
	}
	return nil
}

// APIVersion returns the API version the client speaks (after negotiation).
func (e *Engine) APIVersion() string { return e.cli.ClientVersion() }

// wrap classifies an Engine API error as a *berth.Error.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	kind := berth.Internal
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		kind = berth.Unavailable
	case cerrdefs.IsNotFound(err):
		kind = berth.NotFound
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err):
		kind = berth.Conflict
	case cerrdefs.IsInvalidArgument(err):
		kind = berth.Invalid
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err):
		kind = berth.Unavailable
	}
	return berth.Wrap(op, kind, err)
}

// objectRE is Docker's own rule for container, volume and network names;
// container IDs (full or short) match it too.
var objectRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,127}$`)

func checkObject(op, what, s string) error {
	if !objectRE.MatchString(s) {
		return berth.E(op, berth.Invalid, "%s %q: use 2-128 letters, digits, '_', '.' or '-', starting with a letter or digit", what, clip(s))
	}
	return nil
}

func checkImage(op, ref string) error {
	if err := berth.ValidImageRef(ref); err != nil {
		return berth.E(op, berth.Invalid, "%v", err)
	}
	return nil
}

// checkLabels rejects label keys that could not be used in a filter.
func checkLabels(op string, labels map[string]string) error {
	for k, v := range labels {
		if k == "" || len(k) > 256 || strings.ContainsAny(k, "=\x00\n") || strings.ContainsRune(v, 0) {
			return berth.E(op, berth.Invalid, "label %q: keys must be 1-256 characters without '=', values without NUL", clip(k))
		}
	}
	return nil
}

// labelFilter turns labels into a "label=key=value" filter.
func labelFilter(labels map[string]string) client.Filters {
	f := client.Filters{}
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return f
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:61] + "..."
	}
	return s
}
