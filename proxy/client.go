package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/berthhq/berth"
)

// Client talks to a proxy's admin API over its unix socket. The engine uses
// it as its Router.
type Client struct {
	http *http.Client
}

// NewClient returns a client of the proxy whose admin socket is at
// socketPath. It connects lazily, on each call that needs it.
func NewClient(socketPath string) *Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &Client{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}}}
}

// Check health-checks p.Targets from the proxy until each passes, or
// returns an Invalid error saying which target failed and why.
func (c *Client) Check(ctx context.Context, p berth.Probe) error {
	return c.do(ctx, "proxy check", http.MethodPost, "/v1/check", p, nil)
}

// SetRoute atomically replaces the route of r.App.
func (c *Client) SetRoute(ctx context.Context, r berth.Route) error {
	return c.do(ctx, "proxy set route", http.MethodPut, "/v1/routes/"+url.PathEscape(r.App), r, nil)
}

// RemoveRoute stops routing app; a missing route is not an error.
func (c *Client) RemoveRoute(ctx context.Context, app string) error {
	return c.do(ctx, "proxy remove route", http.MethodDelete, "/v1/routes/"+url.PathEscape(app), nil, nil)
}

// Routes returns the proxy's routes sorted by app.
func (c *Client) Routes(ctx context.Context) ([]berth.Route, error) {
	var routes []berth.Route
	if err := c.do(ctx, "proxy routes", http.MethodGet, "/v1/routes", nil, &routes); err != nil {
		return nil, err
	}
	return routes, nil
}

// Drain waits until no request is in flight to targets and no route names
// any of them, or until timeout passes (30s when zero), and returns how
// many requests were still in flight then. A target still routed at the
// timeout is a Conflict error. The call lasts as long as the drain.
func (c *Client) Drain(ctx context.Context, targets []string, timeout time.Duration) (int, error) {
	req := drainRequest{Targets: targets}
	if timeout != 0 {
		req.Timeout = timeout.String()
	}
	var ans drainAnswer
	if err := c.do(ctx, "proxy drain", http.MethodPost, "/v1/drain", req, &ans); err != nil {
		return 0, err
	}
	if len(ans.Routed) > 0 {
		return ans.Inflight, berth.E("proxy drain", berth.Conflict, "target %s is still routed", ans.Routed[0])
	}
	return ans.Inflight, nil
}

// Certificates reports the TLS state of every routed host, sorted by host.
func (c *Client) Certificates(ctx context.Context) ([]berth.Certificate, error) {
	var out []berth.Certificate
	if err := c.do(ctx, "proxy certificates", http.MethodGet, "/v1/certificates", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// SetCertificate uploads a certificate (PEM chain and PEM key) for host,
// replacing any ACME one; empty PEMs remove it and give the host back to
// ACME.
func (c *Client) SetCertificate(ctx context.Context, host string, certPEM, keyPEM []byte) error {
	path := "/v1/certificates/" + url.PathEscape(host)
	if len(certPEM) == 0 && len(keyPEM) == 0 {
		return c.do(ctx, "proxy remove certificate", http.MethodDelete, path, nil, nil)
	}
	up := certificateUpload{CertPEM: string(certPEM), KeyPEM: string(keyPEM)}
	return c.do(ctx, "proxy set certificate", http.MethodPut, path, up, nil)
}

// Health reports whether the proxy answers.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, "proxy health", http.MethodGet, "/v1/health", nil, nil)
}

// do sends one request and decodes a 2xx answer into out, when not nil.
func (c *Client) do(ctx context.Context, op, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s: encode: %w", op, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://berth-proxy"+path, body)
	if err != nil {
		return berth.Wrap(op, berth.Internal, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Every admin call is idempotent: let the transport resend it when a
	// kept-alive connection turns out closed (the proxy restarted). An
	// empty value marks it without sending the header.
	req.Header["Idempotency-Key"] = nil
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return berth.E(op, berth.Unavailable, "proxy unreachable: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
			return nil
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(out); err != nil {
			return berth.Wrap(op, berth.Internal, fmt.Errorf("decode answer: %w", err))
		}
		return nil
	}
	var e errorBody
	if json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&e) != nil || e.Error == "" {
		e.Error = http.StatusText(resp.StatusCode)
	}
	kind := berth.Internal
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		kind = berth.Invalid
	case http.StatusConflict:
		kind = berth.Conflict
	case http.StatusNotFound:
		kind = berth.NotFound
	case http.StatusServiceUnavailable:
		kind = berth.Unavailable
	}
	return berth.E(op, kind, "%s", e.Error)
}
