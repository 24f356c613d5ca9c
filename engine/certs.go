package engine

import (
	"context"
	"fmt"

	"github.com/berthhq/berth"
)

// DomainStatus is one of an app's domains with its certificate.
type DomainStatus struct {
	berth.Domain
	Certificate berth.Certificate `json:"certificate"`
}

// Domains lists app's domains with the proxy's certificate status. When the
// proxy cannot be asked, the domains come back with status "unknown" in
// LastError rather than failing the listing.
func (e *Engine) Domains(ctx context.Context, app *berth.App) ([]DomainStatus, error) {
	doms, err := e.st.Domains(ctx, app.TeamID, app.ID)
	if err != nil {
		return nil, fmt.Errorf("domains of %s: %w", app.Name, err)
	}
	certs, cerr := e.cfg.Router.Certificates(ctx)
	byHost := map[string]berth.Certificate{}
	for _, c := range certs {
		byHost[c.Host] = c
	}
	out := make([]DomainStatus, 0, len(doms))
	for _, d := range doms {
		c, ok := byHost[d.Host]
		switch {
		case cerr != nil:
			c = berth.Certificate{Host: d.Host, Status: berth.CertNone, LastError: "proxy unreachable: status unknown"}
		case !ok:
			c = berth.Certificate{Host: d.Host, Status: berth.CertNone, LastError: "not routed yet: deploy the app"}
		}
		out = append(out, DomainStatus{Domain: d, Certificate: c})
	}
	return out, nil
}

// SetCertificate installs a custom certificate for one of app's domains;
// empty PEMs remove it (ACME takes over again).
func (e *Engine) SetCertificate(ctx context.Context, app *berth.App, host string, certPEM, keyPEM []byte) error {
	const op = "set certificate"
	host = berth.NormalizeHost(host)
	doms, err := e.st.Domains(ctx, app.TeamID, app.ID)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for _, d := range doms {
		if d.Host == host {
			if err := e.cfg.Router.SetCertificate(ctx, host, certPEM, keyPEM); err != nil {
				return fmt.Errorf("%s for %s: %w", op, host, err)
			}
			return nil
		}
	}
	return berth.E(op, berth.NotFound, "%s has no domain %q", app.Name, host)
}
