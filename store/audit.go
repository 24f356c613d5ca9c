package store

import (
	"context"
	"strings"

	"github.com/berthhq/berth"
)

// AddAuditEvent appends an event to the audit log. It fills an empty ID.
func (s *Store) AddAuditEvent(ctx context.Context, e *berth.AuditEvent) error {
	const op = "add audit event"
	if e.ID == "" {
		e.ID = berth.NewID("evt")
	}
	e.At = utc(e.At)
	_, err := s.writer().exec(ctx, `INSERT INTO audit_events
		(id, team_id, at, actor_id, actor_name, action, target, client_addr, outcome, status, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.TeamID, e.At, e.ActorID, e.ActorName, e.Action, e.Target, e.ClientAddr, string(e.Outcome), e.Status, e.Detail)
	return dbError(op, err)
}

// AuditEvents calls fn with the team's audit events that match f, newest
// first, streaming them from the database; an error of fn stops the walk
// and is returned.
func (s *Store) AuditEvents(ctx context.Context, teamID string, f berth.AuditFilter, fn func(*berth.AuditEvent) error) error {
	const op = "list audit events"
	where := []string{"team_id = ?"}
	args := []any{teamID}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, f.Since)
	}
	if !f.Until.IsZero() {
		where, args = append(where, "at < ?"), append(args, f.Until)
	}
	if prefix, ok := strings.CutSuffix(f.Action, "."); ok && prefix != "" {
		where, args = append(where, "substr(action, 1, ?) = ?"), append(args, len(f.Action), f.Action)
	} else if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if f.ActorID != "" {
		where, args = append(where, "actor_id = ?"), append(args, f.ActorID)
	}
	if f.Outcome != "" {
		where, args = append(where, "outcome = ?"), append(args, string(f.Outcome))
	}
	q := `SELECT id, team_id, at, actor_id, actor_name, action, target, client_addr, outcome, status, detail
		FROM audit_events WHERE ` + strings.Join(where, " AND ") + ` ORDER BY at DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.reader().query(ctx, q, args...)
	if err != nil {
		return dbError(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var e berth.AuditEvent
		var outcome string
		if err := rows.Scan(&e.ID, &e.TeamID, scanTime{&e.At}, &e.ActorID, &e.ActorName, &e.Action, &e.Target,
			&e.ClientAddr, &outcome, &e.Status, &e.Detail); err != nil {
			return dbError(op, err)
		}
		e.Outcome = berth.Outcome(outcome)
		if err := fn(&e); err != nil {
			return err
		}
	}
	return dbError(op, rows.Err())
}
