package berth

import (
	"fmt"
	"strings"
	"time"
)

// Domain is a host name routed by the proxy to an app's live release.
type Domain struct {
	ID        string    `json:"id"`
	TeamID    string    `json:"team_id"`
	AppID     string    `json:"app_id"`
	Host      string    `json:"host"`
	CreatedAt time.Time `json:"created_at"`
}

// NormalizeHost lowercases a host name and removes one trailing dot.
func NormalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

// ValidHost checks a host name as berth accepts it for routing: DNS labels of
// letters, digits and dashes, at least two labels (or "localhost" names),
// at most 253 characters, and an optional leading "*." wildcard.
func ValidHost(h string) error {
	if h != NormalizeHost(h) {
		return fmt.Errorf("host %q: use lowercase, without a trailing dot", clip(h))
	}
	name := strings.TrimPrefix(h, "*.")
	labels := strings.Split(name, ".")
	if len(name) == 0 || len(name) > 253 || len(labels) < 2 {
		return fmt.Errorf("host %q: must be a fully qualified name such as app.example.com", clip(h))
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host %q: bad label %q", clip(h), clip(l))
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host %q: only letters, digits, dashes and dots", clip(h))
			}
		}
	}
	return nil
}

// Certificate is the TLS state of one host as the proxy reports it.
type Certificate struct {
	Host      string     `json:"host"`
	Status    CertStatus `json:"status"`
	Source    string     `json:"source,omitempty"` // "acme" or "custom"
	Issuer    string     `json:"issuer,omitempty"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// CertStatus is where a host's certificate is.
type CertStatus string

// The certificate statuses.
const (
	CertNone    CertStatus = "none"    // TLS is off for this host (no ACME, or a name ACME cannot serve)
	CertPending CertStatus = "pending" // being obtained
	CertValid   CertStatus = "valid"   // served
	CertError   CertStatus = "error"   // the last attempt failed; see LastError (retried)
)
