package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/docker/dockertest"
)

// TestUploadImageAndCancel deploys a build context uploaded by the CLI
// (--from-dir), then the image that build produced as a prebuilt-image
// app (no build, no pull), and cancels a deployment from the CLI.
func TestUploadImageAndCancel(t *testing.T) {
	berthBin, appBin := binaries(t)
	s := startServer(t, berthBin)
	s.login()

	dir := t.TempDir()
	app, err := os.ReadFile(appBin)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, body string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("app", string(app), 0o755)
	write("message.txt", "uploaded\n", 0o644)
	write("Dockerfile", "FROM scratch\nCOPY app /app\nCOPY message.txt /message.txt\nENTRYPOINT [\"/app\"]\n", 0o644)

	s.berth("apps", "create", "up", "--upload", "--port", "8080")
	s.berth("domains", "add", "up", "up.localhost")
	s.berth("deploy", "up", "--from-dir", dir)
	s.wantAnswer("up.localhost", "uploaded greeting= release=v1")

	// The image of that release, deployed as a prebuilt image.
	var rels []struct {
		Image string `json:"image"`
	}
	mustJSON(t, s.berth("releases", "up", "-o", "json"), &rels)
	if len(rels) != 1 || rels[0].Image == "" {
		t.Fatalf("releases: %+v", rels)
	}
	var status struct {
		Containers []berth.Container `json:"containers"`
	}
	mustJSON(t, s.berth("status", "up", "-o", "json"), &status)
	image := "berth/" + status.Containers[0].Labels[berth.LabelApp] + ":d1"
	s.berth("apps", "create", "img", "--image", image, "--port", "8080")
	s.berth("domains", "add", "img", "img.localhost")
	s.berth("env", "set", "img", "GREETING=from-image")
	out := s.berth("deploy", "img")
	if strings.Contains(out, "building") {
		t.Errorf("an image app was built:\n%s", out)
	}
	s.wantAnswer("img.localhost", "uploaded greeting=from-image release=v1")

	// An image that is not here fails clearly (this machine cannot pull).
	errOut := s.berthErr("deploy", "img", "--image", "berth-e2e/absent:1")
	if !strings.Contains(errOut, "berth-e2e/absent:1") {
		t.Errorf("missing image: %s", errOut)
	}
	s.wantAnswer("img.localhost", "uploaded greeting=from-image release=v1")

	// Cancel: a build that would take five minutes is cancelled from the
	// CLI; the deployment ends cancelled and "up" keeps serving.
	busybox := dockertest.Busybox(t, dockertest.Engine(t))
	write("Dockerfile", "FROM "+busybox+"\nRUN sleep 300\n", 0o644)
	var d berth.Deployment
	mustJSON(t, s.berth("deploy", "up", "--from-dir", dir, "--detach", "-o", "json"), &d)
	deadline := time.Now().Add(2 * time.Minute)
	for got := d; got.Status != berth.StatusBuilding; mustJSON(t, s.berth("deployment", "up", d.ID, "-o", "json"), &got) {
		if !got.Status.Active() || time.Now().After(deadline) {
			t.Fatalf("deployment is %s, want building", got.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.berth("deploy", "up", "--cancel")
	var got berth.Deployment
	for mustJSON(t, s.berth("deployment", "up", d.ID, "-o", "json"), &got); got.Status.Active(); mustJSON(t, s.berth("deployment", "up", d.ID, "-o", "json"), &got) {
		if time.Now().After(deadline) {
			t.Fatalf("cancelled deployment still %s", got.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got.Status != berth.StatusCancelled {
		t.Fatalf("deployment ended %s (%s), want cancelled", got.Status, got.Error)
	}
	s.wantAnswer("up.localhost", "uploaded greeting= release=v1")
}
