package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func TestWebhookSettings(t *testing.T) {
	const secret = "hook-s3cret-0123456789"
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		g := newFixture(t, s, "other")

		w, err := s.Webhook(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if w.SecretSet || len(w.Branches) != 0 || len(w.Paths) != 0 || w.AppID != f.app.ID {
			t.Fatalf("defaults %+v", w)
		}
		a, hw, got, err := s.HookTarget(ctx, f.app.ID)
		must(t, err)
		if a.ID != f.app.ID || a.TeamID != f.team.ID || got != "" || hw.SecretSet {
			t.Fatalf("HookTarget before a secret: %v %+v %q", a.ID, hw, got)
		}

		must(t, s.SetWebhook(ctx, f.team.ID, &berth.Webhook{AppID: f.app.ID, Branches: []string{"main", "release/*"}, Paths: []string{"api/"}}, nil))
		must(t, s.SetWebhookSecret(ctx, f.team.ID, f.app.ID, secret))
		// The filter survives a new secret, and the secret a new filter.
		nw := &berth.Webhook{AppID: f.app.ID, Branches: []string{"main", "release/*"}, Paths: []string{"api/", "go.mod"}}
		must(t, s.SetWebhook(ctx, f.team.ID, nw, nil))
		if !nw.SecretSet {
			t.Error("SetWebhook without a secret reports none set")
		}
		w, err = s.Webhook(ctx, f.team.ID, f.app.ID)
		must(t, err)
		if !w.SecretSet || len(w.Branches) != 2 || len(w.Paths) != 2 || w.UpdatedAt.IsZero() {
			t.Errorf("settings %+v", w)
		}
		_, _, got, err = s.HookTarget(ctx, f.app.ID)
		if err != nil || got != secret {
			t.Errorf("HookTarget secret %q, %v", got, err)
		}

		// Another team's app is missing, whatever the call.
		wantKind(t, s.SetWebhook(ctx, g.team.ID, &berth.Webhook{AppID: f.app.ID}, nil), berth.NotFound)
		other := "x-other-team-secret"
		wantKind(t, s.SetWebhook(ctx, g.team.ID, &berth.Webhook{AppID: f.app.ID}, &other), berth.NotFound)
		wantKind(t, s.SetWebhookSecret(ctx, g.team.ID, f.app.ID, "x-other-team-secret"), berth.NotFound)
		_, err = s.Webhook(ctx, g.team.ID, f.app.ID)
		wantKind(t, err, berth.NotFound)
		_, _, got, _ = s.HookTarget(ctx, f.app.ID)
		if got != secret {
			t.Errorf("another team changed the secret: %q", got)
		}
		_, _, _, err = s.HookTarget(ctx, berth.NewID("app"))
		wantKind(t, err, berth.NotFound)

		// Validation.
		wantKind(t, s.SetWebhook(ctx, f.team.ID, &berth.Webhook{AppID: f.app.ID, Branches: []string{"-x"}}, nil), berth.Invalid)
		wantKind(t, s.SetWebhookSecret(ctx, f.team.ID, f.app.ID, "short"), berth.Invalid)
		short := "short"
		wantKind(t, s.SetWebhook(ctx, f.team.ID, &berth.Webhook{AppID: f.app.ID, Branches: []string{"dev"}}, &short), berth.Invalid)
		if w, _ := s.Webhook(ctx, f.team.ID, f.app.ID); len(w.Branches) != 2 {
			t.Errorf("a refused update changed the filter: %+v", w)
		}

		// Sealed at rest.
		var raw []byte
		must(t, s.w.QueryRowContext(ctx, s.reader().bind(`SELECT secret FROM app_webhooks WHERE app_id = ?`), f.app.ID).Scan(&raw))
		if len(raw) == 0 || bytes.Contains(raw, []byte(secret)) {
			t.Errorf("stored secret %q", raw)
		}

		// Rotation re-seals it.
		n, err := s.RotateKey(ctx, bytes.Repeat([]byte{3}, 32))
		must(t, err)
		if n < 1 {
			t.Errorf("re-sealed %d values", n)
		}
		if _, _, got, err := s.HookTarget(ctx, f.app.ID); err != nil || got != secret {
			t.Errorf("secret after rotation: %q, %v", got, err)
		}

		// A secret set with the filter, then cleared: no secret any more.
		set := "another-secret-0123456789"
		must(t, s.SetWebhook(ctx, f.team.ID, &berth.Webhook{AppID: f.app.ID}, &set))
		if _, hw, got, err := s.HookTarget(ctx, f.app.ID); err != nil || got != set || len(hw.Branches) != 0 {
			t.Errorf("after setting with the filter: %+v %q %v", hw, got, err)
		}
		must(t, s.SetWebhookSecret(ctx, f.team.ID, f.app.ID, ""))
		if _, hw, got, err := s.HookTarget(ctx, f.app.ID); err != nil || got != "" || hw.SecretSet {
			t.Errorf("after clearing: %+v %q %v", hw, got, err)
		}
		// Gone with the app.
		must(t, s.DeleteApp(ctx, f.team.ID, f.app.ID))
		_, _, _, err = s.HookTarget(ctx, f.app.ID)
		wantKind(t, err, berth.NotFound)
	})
}

func hookDeployment(f fixture, ref string) *berth.Deployment {
	return &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID, Ref: ref, CreatedBy: "webhook github"}
}

func delivery(f fixture, id string, outcome berth.DeliveryOutcome) *berth.WebhookDelivery {
	return &berth.WebhookDelivery{TeamID: f.team.ID, AppID: f.app.ID, Provider: berth.GitHub, DeliveryID: id,
		Event: "push", Outcome: outcome, Reason: "test", ReceivedAt: time.Now()}
}

func TestRecordDelivery(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		g := newFixture(t, s, "other")
		sha := func(c byte) string { return string(bytes.Repeat([]byte{c}, 40)) }

		// A first push deploys.
		d1 := hookDeployment(f, sha('a'))
		dl := delivery(f, "d-1", "")
		created, err := s.RecordDelivery(ctx, dl, d1)
		must(t, err)
		if !created || dl.Outcome != berth.DeliveryDeployed || dl.DeploymentID != d1.ID || d1.Number != 1 {
			t.Fatalf("first: created %v, %+v, #%d", created, dl, d1.Number)
		}
		// The same delivery again: already received, nothing written.
		_, err = s.RecordDelivery(ctx, delivery(f, "d-1", ""), hookDeployment(f, sha('b')))
		if !errors.Is(err, ErrAlreadyReceived) {
			t.Fatalf("redelivery: %v", err)
		}
		// Another provider's delivery with the same ID is another delivery.
		other := delivery(f, "d-1", berth.DeliveryIgnored)
		other.Provider = berth.GitLab
		_, err = s.RecordDelivery(ctx, other, nil)
		must(t, err)

		// A second push while #1 is queued: coalesced into #1.
		dl2 := delivery(f, "d-2", "")
		created, err = s.RecordDelivery(ctx, dl2, hookDeployment(f, sha('c')))
		must(t, err)
		if created || dl2.Outcome != berth.DeliveryCoalesced || dl2.DeploymentID != d1.ID || dl2.DeploymentNumber != 1 {
			t.Fatalf("second: created %v, %+v", created, dl2)
		}
		if got, _ := s.Deployment(ctx, f.team.ID, d1.ID); got.Ref != sha('c') {
			t.Errorf("#1 deploys %s, want the newest push", got.Ref)
		}
		// A deployment that is no longer queued is not re-pointed: a new
		// one is queued after it.
		must(t, s.MoveDeployment(ctx, f.team.ID, d1.ID, berth.StatusQueued, berth.StatusFetching, time.Now(), ""))
		d3 := hookDeployment(f, sha('d'))
		dl3 := delivery(f, "d-3", "")
		created, err = s.RecordDelivery(ctx, dl3, d3)
		must(t, err)
		if !created || dl3.Outcome != berth.DeliveryDeployed || d3.Number != 2 {
			t.Fatalf("third: created %v, %+v", created, dl3)
		}
		if got, _ := s.Deployment(ctx, f.team.ID, d1.ID); got.Ref != sha('c') {
			t.Errorf("the running #1 was re-pointed to %s", got.Ref)
		}
		// A queued deployment a user started is never re-pointed.
		must(t, s.MoveDeployment(ctx, f.team.ID, d3.ID, berth.StatusQueued, berth.StatusCancelled, time.Now(), ""))
		manual := &berth.Deployment{TeamID: f.team.ID, AppID: f.app.ID, Ref: "main", CreatedBy: "alice"}
		must(t, s.CreateDeployment(ctx, manual))
		dl4 := delivery(f, "d-4", "")
		created, err = s.RecordDelivery(ctx, dl4, hookDeployment(f, sha('e')))
		must(t, err)
		if !created || dl4.DeploymentID == manual.ID {
			t.Errorf("a user's queued deployment was coalesced into: %+v", dl4)
		}

		// Rejected deliveries never take a delivery ID: the real one still
		// counts after an attacker sent its ID with a bad signature.
		_, err = s.RecordDelivery(ctx, delivery(f, "d-5", berth.DeliveryRejected), nil)
		must(t, err)
		_, err = s.RecordDelivery(ctx, delivery(f, "d-5", berth.DeliveryRejected), nil)
		must(t, err)
		dl5 := delivery(f, "d-5", berth.DeliveryIgnored)
		_, err = s.RecordDelivery(ctx, dl5, nil)
		must(t, err)
		// A failed one may come again.
		must(t, s.FailDelivery(ctx, f.team.ID, dl5.ID, "could not be queued"))
		_, err = s.RecordDelivery(ctx, delivery(f, "d-5", berth.DeliveryIgnored), nil)
		must(t, err)
		if seen, err := s.DeliverySeen(ctx, f.team.ID, f.app.ID, berth.GitHub, "d-5"); err != nil || !seen {
			t.Errorf("DeliverySeen(d-5) = %v, %v", seen, err)
		}
		if seen, _ := s.DeliverySeen(ctx, g.team.ID, f.app.ID, berth.GitHub, "d-5"); seen {
			t.Error("another team sees the delivery")
		}

		list, err := s.WebhookDeliveries(ctx, f.team.ID, f.app.ID, 0)
		must(t, err)
		if len(list) != 9 {
			t.Fatalf("%d deliveries, want 9: %+v", len(list), list)
		}
		byID := map[string]berth.WebhookDelivery{}
		for _, d := range list {
			byID[d.ID] = d
		}
		if d := byID[dl2.ID]; d.DeploymentNumber != 1 || d.Outcome != berth.DeliveryCoalesced || d.Reason == "" {
			t.Errorf("listed %+v", d)
		}
		if d := byID[dl5.ID]; d.Outcome != berth.DeliveryFailed || d.Reason != "could not be queued" {
			t.Errorf("failed delivery listed %+v", d)
		}
		if got, _ := s.WebhookDeliveries(ctx, f.team.ID, f.app.ID, 3); len(got) != 3 {
			t.Errorf("limit 3: %d", len(got))
		}
		_, err = s.WebhookDeliveries(ctx, g.team.ID, f.app.ID, 0)
		wantKind(t, err, berth.NotFound)
		_, err = s.RecordDelivery(ctx, &berth.WebhookDelivery{TeamID: g.team.ID, AppID: f.app.ID, Outcome: berth.DeliveryIgnored}, nil)
		wantKind(t, err, berth.NotFound)
		wantKind(t, s.FailDelivery(ctx, g.team.ID, dl5.ID, "x"), berth.NotFound)
	})
}

// TestRecordDeliveryPushOrder: pushes delivered out of order leave the
// queued deployment on the newest commit, or on the branch when their
// order cannot be told; never on an older commit.
func TestRecordDeliveryPushOrder(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		c := func(i int) string { return strings.Repeat(fmt.Sprintf("%x", i+1), 40) }
		push := func(id string, before, after int) (*berth.WebhookDelivery, *berth.Deployment, bool) {
			t.Helper()
			dl := delivery(f, id, "")
			dl.Ref, dl.Before, dl.Commit = "refs/heads/main", c(before), c(after)
			d := hookDeployment(f, c(after))
			created, err := s.RecordDelivery(ctx, dl, d)
			must(t, err)
			return dl, d, created
		}
		ref := func(id string) string {
			t.Helper()
			d, err := s.Deployment(ctx, f.team.ID, id)
			must(t, err)
			return d.Ref
		}
		// The second push arrives first and queues #1.
		_, d1, created := push("p2", 1, 2)
		if !created || d1.Ref != c(2) {
			t.Fatalf("first delivery: created %v, ref %s", created, d1.Ref)
		}
		// The first push, delivered last, is older: #1 keeps c2.
		dl, _, _ := push("p1", 0, 1)
		if dl.Outcome != berth.DeliveryCoalesced || ref(d1.ID) != c(2) || !strings.Contains(dl.Reason, "it keeps "+c(2)[:12]) {
			t.Fatalf("older push: %s, %+v", ref(d1.ID), dl)
		}
		// The third, on top of c2: #1 now deploys c3.
		dl, _, _ = push("p3", 2, 3)
		if ref(d1.ID) != c(3) || !strings.Contains(dl.Reason, "pushed on top of") {
			t.Fatalf("newer push: %s, %+v", ref(d1.ID), dl)
		}
		// The fifth before the fourth: a gap, so the branch.
		dl, _, _ = push("p5", 4, 5)
		if ref(d1.ID) != "refs/heads/main" || !strings.Contains(dl.Reason, "cannot tell") {
			t.Fatalf("gap: %s, %+v", ref(d1.ID), dl)
		}
		push("p4", 3, 4)
		if ref(d1.ID) != "refs/heads/main" {
			t.Fatalf("after the gap closed: %s", ref(d1.ID))
		}
		// #1 starts; the fourth push comes again under another delivery
		// ID: a later push started from its commit, so the new deployment
		// takes the branch rather than c4.
		must(t, s.MoveDeployment(ctx, f.team.ID, d1.ID, berth.StatusQueued, berth.StatusFetching, time.Now(), ""))
		dl, d2, created := push("p4-retry", 3, 4)
		if !created || d2.Ref != "refs/heads/main" || !strings.Contains(dl.Reason, "head of main") {
			t.Fatalf("old push after the start: created %v, ref %s, %+v", created, d2.Ref, dl)
		}
		// A push nothing started from deploys its commit.
		must(t, s.MoveDeployment(ctx, f.team.ID, d2.ID, berth.StatusQueued, berth.StatusFetching, time.Now(), ""))
		_, d3, _ := push("p6", 5, 6)
		if d3.Ref != c(6) {
			t.Errorf("a new push deploys %s, want its commit", d3.Ref)
		}
		list, err := s.WebhookDeliveries(ctx, f.team.ID, f.app.ID, 1)
		must(t, err)
		if len(list) != 1 || list[0].Before != c(5) || list[0].Commit != c(6) {
			t.Errorf("listed %+v", list)
		}
	})
}

// TestRecordDeliveryConcurrent sends deliveries of one app at once: the
// same delivery twenty times deploys once; twenty different pushes deploy
// once and coalesce the rest.
func TestRecordDeliveryConcurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		run := func(n int, id func(i int) string) (created, coalesced, dup int) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					dl := delivery(f, id(i), "")
					c, err := s.RecordDelivery(ctx, dl, hookDeployment(f, fmt.Sprintf("%040x", i+1)))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case errors.Is(err, ErrAlreadyReceived):
						dup++
					case err != nil:
						t.Errorf("delivery %d: %v", i, err)
					case c:
						created++
					case dl.Outcome == berth.DeliveryCoalesced:
						coalesced++
					}
				})
			}
			wg.Wait()
			return
		}
		created, coalesced, dup := run(20, func(int) string { return "same" })
		if created != 1 || coalesced != 0 || dup != 19 {
			t.Errorf("same delivery: %d created, %d coalesced, %d duplicates; want 1, 0, 19", created, coalesced, dup)
		}
		created, coalesced, dup = run(20, func(i int) string { return fmt.Sprintf("push-%d", i) })
		if created != 0 || coalesced != 20 || dup != 0 {
			t.Errorf("burst: %d created, %d coalesced, %d duplicates; want 0, 20, 0 (all into the queued one)", created, coalesced, dup)
		}
		ds, err := s.Deployments(ctx, f.team.ID, f.app.ID, 0)
		must(t, err)
		if len(ds) != 1 {
			t.Errorf("%d deployments, want 1", len(ds))
		}
	})
}

func TestPruneDeliveries(t *testing.T) {
	eachStore(t, func(t *testing.T, s *Store) {
		ctx := ctxT(t)
		f := newFixture(t, s, "acme")
		base := time.Now().Add(-time.Hour)
		for i := range MaxRejectedDeliveries + 10 {
			dl := delivery(f, fmt.Sprintf("r-%d", i), berth.DeliveryRejected)
			dl.ReceivedAt = base.Add(time.Duration(i) * time.Second)
			_, err := s.RecordDelivery(ctx, dl, nil)
			must(t, err)
		}
		for i := range MaxDeliveries + 10 {
			dl := delivery(f, fmt.Sprintf("i-%d", i), berth.DeliveryIgnored)
			dl.ReceivedAt = base.Add(time.Duration(i) * time.Second)
			_, err := s.RecordDelivery(ctx, dl, nil)
			must(t, err)
		}
		list, err := s.WebhookDeliveries(ctx, f.team.ID, f.app.ID, 0)
		must(t, err)
		counts := map[berth.DeliveryOutcome]int{}
		for _, d := range list {
			counts[d.Outcome]++
		}
		if counts[berth.DeliveryRejected] != MaxRejectedDeliveries || counts[berth.DeliveryIgnored] != MaxDeliveries {
			t.Errorf("kept %v, want %d rejected and %d ignored", counts, MaxRejectedDeliveries, MaxDeliveries)
		}
		// The newest were kept.
		if list[0].DeliveryID != fmt.Sprintf("i-%d", MaxDeliveries+9) {
			t.Errorf("newest is %s", list[0].DeliveryID)
		}
	})
}
