package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
)

// actionOf returns the audit action of a route: the one it declares, else
// its method and pattern (TestRouteTable keeps every mutating route named).
func actionOf(rt route) string {
	if rt.action != "" {
		return rt.action
	}
	return rt.method + " " + rt.pattern
}

var wildcardRE = regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)

// targetOf names the objects of a request: its path values in the order of
// the pattern ("app=web host=www.example.com").
func targetOf(rt route, r *http.Request) string {
	var parts []string
	for _, m := range wildcardRE.FindAllStringSubmatch(rt.pattern, -1) {
		parts = append(parts, m[1]+"="+clip(r.PathValue(m[1])))
	}
	return strings.Join(parts, " ")
}

// audit writes the audit event of a mutating request. It records who, what,
// where from and how it ended, never a request body or a secret; a failure
// to write it is logged and the response stands.
func (s *Server) audit(rt route, rec *recorder, r *http.Request, p *auth.Principal, err error) {
	status := rec.status
	switch {
	case err != nil && !rec.started:
		status = statusOf(berth.ErrorKind(err))
	case status == 0 && err == nil:
		status = http.StatusOK
	case status == 0:
		status = statusOf(berth.ErrorKind(err))
	}
	if status == http.StatusTooManyRequests {
		// Refused by a rate limit: a flood (of sign-ins, webhooks, git
		// requests) must not grow the audit table with it. What the limits
		// let through is recorded.
		return
	}
	e := &berth.AuditEvent{
		At:        s.now().UTC(),
		ActorName: "anonymous",
		Action:    actionOf(rt),
		Target:    targetOf(rt, r),
		Outcome:   berth.OutcomeOf(status),
		Status:    status,
	}
	if a := s.addrs.Client(r); a.IsValid() {
		e.ClientAddr = a.String()
	}
	team, user := rec.audit.team, rec.audit.user
	if p != nil && user == nil {
		team, user = p.Team, p.User
	}
	if team != nil {
		e.TeamID = team.ID
	}
	if user != nil {
		e.ActorID, e.ActorName = user.ID, user.Name
	}
	if err != nil {
		e.Detail = clip(berth.ErrorMessage(err))
	}
	if rec.audit.target != "" {
		e.Target = rec.audit.target
	}
	if rec.audit.outcome != "" {
		e.Outcome = rec.audit.outcome
	}
	if rec.audit.detail != "" {
		e.Detail = clip(rec.audit.detail)
	}
	// The request's context may be cancelled by now (the client left): the
	// event is written regardless.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if werr := s.store.AddAuditEvent(ctx, e); werr != nil {
		s.log.Error("api: write audit event", "action", e.Action, "status", e.Status, "err", werr)
	}
}

// auditQuery reads the filters of GET /api/v1/audit.
func auditQuery(r *http.Request, now time.Time) (berth.AuditFilter, error) {
	const op = "read query"
	q := r.URL.Query()
	var f berth.AuditFilter
	when := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		if d, err := time.ParseDuration(v); err == nil && d > 0 {
			return now.Add(-d), nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, berth.E(op, berth.Invalid, "%s: give an RFC 3339 time or a duration such as 24h", name)
		}
		return t, nil
	}
	var err error
	if f.Since, err = when("since"); err != nil {
		return f, err
	}
	if f.Until, err = when("until"); err != nil {
		return f, err
	}
	f.Action, f.ActorID = q.Get("action"), q.Get("actor")
	if len(f.Action) > 64 || len(f.ActorID) > 64 {
		return f, berth.E(op, berth.Invalid, "action and actor are at most 64 characters")
	}
	if o := q.Get("outcome"); o != "" {
		if !berth.ValidOutcome(berth.Outcome(o)) {
			return f, berth.E(op, berth.Invalid, "outcome must be success, denied or failed")
		}
		f.Outcome = berth.Outcome(o)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			return f, berth.E(op, berth.Invalid, "limit must be a number from 1 to 100000")
		}
		f.Limit = n
	}
	return f, nil
}

// listAudit lists the team's audit events, newest first: a JSON array (at
// most 1000 unless limit says otherwise), or with ?format=jsonl one JSON
// object per line, streamed and unlimited by default.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	f, err := auditQuery(r, s.now())
	if err != nil {
		return err
	}
	switch r.URL.Query().Get("format") {
	case "", "json":
		if f.Limit == 0 {
			f.Limit = maxLimit
		}
		out := []berth.AuditEvent{}
		if err := s.store.AuditEvents(r.Context(), p.Team.ID, f, func(e *berth.AuditEvent) error {
			out = append(out, *e)
			return nil
		}); err != nil {
			return fmt.Errorf("list audit events: %w", err)
		}
		return writeJSON(w, http.StatusOK, out)
	case "jsonl":
		w.Header().Set("Content-Type", "application/jsonl")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		rc := http.NewResponseController(w)
		enc := json.NewEncoder(w)
		n := 0
		err := s.store.AuditEvents(r.Context(), p.Team.ID, f, func(e *berth.AuditEvent) error {
			if err := enc.Encode(e); err != nil {
				return err
			}
			if n++; n%256 == 0 {
				return rc.Flush()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("stream audit events: %w", err)
		}
		if n == 0 {
			w.WriteHeader(http.StatusOK)
		}
		return nil
	}
	return berth.E("read query", berth.Invalid, "format must be json or jsonl")
}
