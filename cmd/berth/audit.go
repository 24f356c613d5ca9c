package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/api"
)

func newAuditCmd(g *globals) *cobra.Command {
	var q api.AuditQuery
	var outcome string
	var jsonl bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the team's audit log, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			q.Outcome = berth.Outcome(outcome)
			if jsonl {
				return c.AuditStream(cmd.Context(), q, g.sys.out)
			}
			events, err := c.Audit(cmd.Context(), q)
			if err != nil {
				return err
			}
			if g.json() {
				if events == nil {
					events = []berth.AuditEvent{}
				}
				return g.printJSON(events)
			}
			t := newTable(g.sys.out, "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "STATUS", "FROM")
			for _, e := range events {
				t.row(e.At.Local().Format(time.DateTime), e.ActorName, e.Action, e.Target, e.Outcome, e.Status, e.ClientAddr)
			}
			return t.flush()
		},
	}
	f := cmd.Flags()
	f.BoolVar(&jsonl, "jsonl", false, "stream every matching event as a JSON line")
	f.StringVar(&q.Since, "since", "", "only events since this RFC 3339 time or duration ago (24h)")
	f.StringVar(&q.Until, "until", "", "only events before this RFC 3339 time or duration ago")
	f.StringVar(&q.Action, "action", "", "only this action, or actions starting with a prefix ending in '.' (app.)")
	f.StringVar(&q.ActorID, "actor", "", "only events of this user ID")
	f.StringVar(&outcome, "outcome", "", "only success, denied or failed")
	f.IntVar(&q.Limit, "limit", 0, "at most this many events (default 1000; no limit with --jsonl)")
	return cmd
}
