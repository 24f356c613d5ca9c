package engine_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

func hookDelivery(id string) *berth.WebhookDelivery {
	return &berth.WebhookDelivery{Provider: berth.GitHub, DeliveryID: id, Event: "push", ReceivedAt: time.Now()}
}

// TestDeployCommitCoalesces: while a deployment runs, pushes queue one
// deployment that is re-pointed to the newest commit, and the worker
// fetches that commit, not the one it was queued with.
func TestDeployCommitCoalesces(t *testing.T) {
	x := newFixture(t, nil)
	ctx := context.Background()
	block := make(chan struct{})
	x.f.Source.Block = block
	c1, c2, c3 := strings.Repeat("1", 40), strings.Repeat("2", 40), strings.Repeat("3", 40)

	running, err := x.e.DeployCommit(ctx, x.app, c1, "webhook github", hookDelivery("d1"))
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, x, running.ID, berth.StatusFetching)
	dl2 := hookDelivery("d2")
	queued, err := x.e.DeployCommit(ctx, x.app, c2, "webhook github", dl2)
	if err != nil || dl2.Outcome != berth.DeliveryDeployed || queued.ID == running.ID {
		t.Fatalf("second push: %v, %+v", err, dl2)
	}
	dl3 := hookDelivery("d3")
	joined, err := x.e.DeployCommit(ctx, x.app, c3, "webhook github", dl3)
	if err != nil || dl3.Outcome != berth.DeliveryCoalesced || joined.ID != queued.ID || joined.Ref != c3 {
		t.Fatalf("third push: %v, %+v, %+v", err, dl3, joined)
	}
	if _, err := x.e.DeployCommit(ctx, x.app, c3, "webhook github", hookDelivery("d3")); !errors.Is(err, store.ErrAlreadyReceived) {
		t.Fatalf("redelivery: %v", err)
	}
	close(block)
	if d := x.wait(running.ID); d.Status != berth.StatusSuperseded && d.Status != berth.StatusLive {
		t.Fatalf("#1 ended %s (%s)", d.Status, d.Error)
	}
	if d := x.wait(queued.ID); d.Status != berth.StatusLive {
		t.Fatalf("#2 ended %s (%s)", d.Status, d.Error)
	}
	fetched := x.f.Source.Fetches
	url := x.app.Source.Git
	if !slices.Equal(fetched, []string{url + "@" + c1, url + "@" + c3}) {
		t.Errorf("fetched %q, want %s then %s (never %s)", fetched, c1[:4], c3[:4], c2[:4])
	}
	ds, _ := x.st.Deployments(ctx, x.app.TeamID, x.app.ID, 0)
	if len(ds) != 2 {
		t.Errorf("%d deployments, want 2", len(ds))
	}
}

func TestDeployCommitRefusesOtherSources(t *testing.T) {
	x := newFixture(t, func(a *berth.App) { a.Source = berth.Source{Image: "nginx:1"} })
	_, err := x.e.DeployCommit(context.Background(), x.app, strings.Repeat("a", 40), "webhook", hookDelivery("d"))
	if !berth.IsKind(err, berth.Invalid) {
		t.Errorf("image app: %v, want Invalid", err)
	}
	y := newFixture(t, nil)
	_, err = y.e.DeployCommit(context.Background(), y.app, "-x", "webhook", hookDelivery("d"))
	if !berth.IsKind(err, berth.Invalid) {
		t.Errorf("bad ref: %v, want Invalid", err)
	}
}
