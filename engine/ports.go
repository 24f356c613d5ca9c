package engine

import (
	"context"
	"io"
	"time"

	"github.com/berthhq/berth"
)

// Source fetches an app's code (package git implements it).
type Source interface {
	// Fetch checks out req.URL at req.Ref (branch, tag or commit) into the
	// empty directory req.Dir with the credentials and trusted ssh host
	// keys of req.Auth, writes progress to out (never a credential) and
	// returns the commit ID, with the host keys it trusted on first use.
	Fetch(ctx context.Context, req berth.FetchRequest, out io.Writer) (berth.FetchResult, error)
}

// Builder builds images (package build implements it).
type Builder interface {
	// Build builds spec, streams the build output to out and returns the
	// image ID.
	Build(ctx context.Context, spec berth.BuildSpec, out io.Writer) (image string, err error)
}

// Runtime runs containers (package docker implements it).
type Runtime interface {
	// EnsureNetwork creates the named bridge network if it does not exist.
	EnsureNetwork(ctx context.Context, name string, labels map[string]string) error
	// Networks lists the names of the networks carrying all the labels.
	Networks(ctx context.Context, labels map[string]string) ([]string, error)
	// RemoveNetwork removes a named network; a missing one is not an
	// error, one with containers attached is a Conflict.
	RemoveNetwork(ctx context.Context, name string) error
	// Connect attaches the running containers carrying all the labels to
	// the named network; Disconnect detaches them. Either leaves a
	// container that is already as asked alone.
	Connect(ctx context.Context, network string, labels map[string]string) error
	Disconnect(ctx context.Context, network string, labels map[string]string) error
	// EnsureVolume creates the named volume if it does not exist.
	EnsureVolume(ctx context.Context, name string, labels map[string]string) error
	// Volumes lists the names of the volumes carrying all the labels.
	Volumes(ctx context.Context, labels map[string]string) ([]string, error)
	// RemoveVolume removes a named volume; a missing one is not an error.
	RemoveVolume(ctx context.Context, name string) error
	// Run creates and starts a container.
	Run(ctx context.Context, spec berth.ContainerSpec) (berth.Container, error)
	// Containers lists containers, in any state, carrying all the labels.
	Containers(ctx context.Context, labels map[string]string) ([]berth.Container, error)
	// Remove stops a container (SIGTERM, then SIGKILL after grace) and
	// removes it. A container that is already gone is not an error.
	Remove(ctx context.Context, id string, grace time.Duration) error
	// Logs writes a container's output to w, the last tail lines (all when
	// tail < 0), following new output while ctx lasts when follow is set.
	Logs(ctx context.Context, id string, tail int, follow bool, w io.Writer) error
	// ImageExists reports whether an image is present locally.
	ImageExists(ctx context.Context, ref string) (bool, error)
	// Images lists the local images carrying all the labels.
	Images(ctx context.Context, labels map[string]string) ([]berth.Image, error)
	// RemoveImage removes an image; one that a container uses is a
	// Conflict, a missing one is not an error.
	RemoveImage(ctx context.Context, ref string) error
}

// Router tells the proxy what to serve (package proxy implements it).
type Router interface {
	// Check health-checks targets from the proxy until each passes, or
	// returns why they did not within the probe's deadline.
	Check(ctx context.Context, p berth.Probe) error
	// SetRoute atomically replaces the route of r.App.
	SetRoute(ctx context.Context, r berth.Route) error
	// RemoveRoute stops routing an app.
	RemoveRoute(ctx context.Context, app string) error
	// Drain waits until no request is in flight to targets, which no route
	// sends new requests to any more, or until timeout; it reports how many
	// requests were still in flight when it gave up.
	Drain(ctx context.Context, targets []string, timeout time.Duration) (inflight int, err error)
	// Certificates reports the TLS state of every routed host.
	Certificates(ctx context.Context) ([]berth.Certificate, error)
	// SetCertificate installs a custom certificate (PEM chain and key) for a
	// host, replacing any ACME one; empty PEMs remove it.
	SetCertificate(ctx context.Context, host string, certPEM, keyPEM []byte) error
}

// StatusPoster posts commit statuses to a Git provider's API (package git
// implements it).
type StatusPoster interface {
	// PostStatus posts st with api's base URL and token. An unreachable or
	// failing provider is an Unavailable error, worth a retry.
	PostStatus(ctx context.Context, api berth.StatusAPI, st berth.CommitStatus) error
}
