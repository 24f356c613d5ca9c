package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/berthhq/berth"
)

// Webhook returns an app's webhook settings and URL.
func (c *Client) Webhook(ctx context.Context, app string) (*WebhookSettings, error) {
	var out WebhookSettings
	return &out, c.do(ctx, "get webhook", http.MethodGet, appPath(app, "webhook"), nil, &out)
}

// SetWebhook replaces an app's branch filter and watch paths, and sets or
// removes its secret when in.Secret is not nil.
func (c *Client) SetWebhook(ctx context.Context, app string, in WebhookUpdate) (*WebhookSettings, error) {
	var out WebhookSettings
	return &out, c.do(ctx, "set webhook", http.MethodPut, appPath(app, "webhook"), in, &out)
}

// NewWebhookSecret generates a new webhook secret for an app; the answer is
// the only time it is shown.
func (c *Client) NewWebhookSecret(ctx context.Context, app string) (*WebhookSecret, error) {
	var out WebhookSecret
	return &out, c.do(ctx, "new webhook secret", http.MethodPost, appPath(app, "webhook", "secret"), nil, &out)
}

// WebhookDeliveries lists an app's webhook deliveries, newest first, at most
// limit (the server's default when 0).
func (c *Client) WebhookDeliveries(ctx context.Context, app string, limit int) ([]berth.WebhookDelivery, error) {
	path := appPath(app, "webhooks", "deliveries")
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out []berth.WebhookDelivery
	return out, c.do(ctx, "list webhook deliveries", http.MethodGet, path, nil, &out)
}
