package auth

import (
	"context"
	"crypto/subtle"
	"net/http"
	"sync"
	"time"

	"github.com/berthhq/berth"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCBindingCookie ties a sign-in in progress to the browser that began
// it, so that a callback URL sent to someone else signs nobody in.
const OIDCBindingCookie = "berth_oidc"

// oidcFlowTTL is how long a sign-in may stay at the provider.
const oidcFlowTTL = 10 * time.Minute

// oidcMaxFlows bounds the sign-ins in progress kept in memory.
const oidcMaxFlows = 10_000

// OIDCConfig configures sign-in through an OpenID Connect provider.
type OIDCConfig struct {
	Issuer       string // the provider's issuer URL
	ClientID     string
	ClientSecret string
	RedirectURL  string // berth's callback: PUBLIC_URL/api/v1/oidc/callback
	// HTTPClient reaches the provider; default http.DefaultClient.
	HTTPClient *http.Client
}

// OIDC signs people in through an OpenID Connect provider with the
// authorization code flow, PKCE (S256), a state bound to the browser by a
// cookie, and a nonce checked in the ID token. It only ever finds users
// through identities they linked themselves while signed in: never by
// matching an e-mail address, which a provider may let anyone claim.
type OIDC struct {
	cfg OIDCConfig

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use
	flows    map[string]*oidcFlow
}

// oidcFlow is a sign-in in progress, keyed by its state.
type oidcFlow struct {
	binding  string // the value of the browser's OIDCBindingCookie
	nonce    string
	verifier string // PKCE
	linkUser string // "" to sign in; a user ID to link the identity to
	expires  time.Time
}

// OIDCResult is who the provider says signed in.
type OIDCResult struct {
	Issuer  string
	Subject string
	Email   string // as the provider claims it; never used to find a user
	// LinkUser is the user who started a link flow; "" for a sign-in.
	LinkUser string
}

// NewOIDC returns an OIDC sign-in. The provider is discovered on first
// use, so that berth starts even while the provider is down.
func NewOIDC(cfg OIDCConfig) *OIDC {
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &OIDC{cfg: cfg, flows: map[string]*oidcFlow{}}
}

func (o *OIDC) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, o.cfg.HTTPClient)
}

func (o *OIDC) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	p := o.provider
	o.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := oidc.NewProvider(o.ctx(ctx), o.cfg.Issuer)
	if err != nil {
		return nil, berth.Wrap("discover OIDC provider", berth.Unavailable, err)
	}
	o.mu.Lock()
	o.provider = p
	o.mu.Unlock()
	return p, nil
}

func (o *OIDC) oauth(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
	}
}

// Start begins a sign-in (linkUser "") or a link flow for linkUser. It
// returns the provider's authorization URL to send the browser to and the
// value of the OIDCBindingCookie to set on it.
func (o *OIDC) Start(ctx context.Context, linkUser string, now time.Time) (authURL, binding string, err error) {
	p, err := o.discover(ctx)
	if err != nil {
		return "", "", err
	}
	state, err := randomString(32)
	if err != nil {
		return "", "", err
	}
	f := &oidcFlow{linkUser: linkUser, expires: now.Add(oidcFlowTTL), verifier: oauth2.GenerateVerifier()}
	if f.binding, err = randomString(32); err != nil {
		return "", "", err
	}
	if f.nonce, err = randomString(32); err != nil {
		return "", "", err
	}
	o.mu.Lock()
	if len(o.flows) >= oidcMaxFlows {
		for k, v := range o.flows {
			if !now.Before(v.expires) {
				delete(o.flows, k)
			}
		}
	}
	full := len(o.flows) >= oidcMaxFlows
	if !full {
		o.flows[state] = f
	}
	o.mu.Unlock()
	if full {
		return "", "", berth.E("start OIDC sign-in", berth.Unavailable, "too many sign-ins in progress; try again in a few minutes")
	}
	authURL = o.oauth(p).AuthCodeURL(state, oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier))
	return authURL, f.binding, nil
}

// Finish completes a flow from the provider's callback: state and code are
// its query parameters, binding the browser's OIDCBindingCookie. A state
// works once. It exchanges the code (with the PKCE verifier), verifies the
// ID token's signature, issuer, audience and expiry, and its nonce.
func (o *OIDC) Finish(ctx context.Context, state, code, binding string, now time.Time) (*OIDCResult, error) {
	const op = "finish OIDC sign-in"
	denied := func(msg string) error { return berth.E(op, berth.Unauthorized, "%s", msg) }
	o.mu.Lock()
	f := o.flows[state]
	delete(o.flows, state)
	o.mu.Unlock()
	if state == "" || f == nil || !now.Before(f.expires) {
		return nil, denied("unknown or expired sign-in: start again")
	}
	if subtle.ConstantTimeCompare([]byte(binding), []byte(f.binding)) != 1 {
		return nil, denied("this sign-in was started in another browser: start again")
	}
	if code == "" {
		return nil, denied("the provider sent no authorization code")
	}
	p, err := o.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := o.oauth(p).Exchange(o.ctx(ctx), code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		return nil, &berth.Error{Op: op, Kind: berth.Unauthorized, Msg: "the provider refused the authorization code", Err: err}
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, denied("the provider sent no ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID}).Verify(o.ctx(ctx), raw)
	if err != nil {
		return nil, &berth.Error{Op: op, Kind: berth.Unauthorized, Msg: "the provider's ID token is not valid", Err: err}
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.nonce)) != 1 {
		return nil, denied("the ID token's nonce does not match")
	}
	var claims struct {
		Email string `json:"email"`
	}
	_ = idt.Claims(&claims)
	return &OIDCResult{Issuer: idt.Issuer, Subject: idt.Subject, Email: claims.Email, LinkUser: f.linkUser}, nil
}
