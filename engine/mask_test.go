package engine_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/engine"
)

// TestSecretsMaskedInLogs: an env var's value that a build echoes (say as
// a build arg), that the app prints at run time or that shows in a failed
// container's last lines never reaches the deployment log, the error or
// the runtime logs.
func TestSecretsMaskedInLogs(t *testing.T) {
	const secret = "sk_live_9f8e7d6c5b4a"
	x := newFixture(t, func(a *berth.App) { a.Build.Args = map[string]string{"API_KEY": secret} })
	ctx := context.Background()
	if err := x.st.SetEnv(ctx, x.app.TeamID, x.app.ID, map[string]string{"API_KEY": secret, "DEBUG": "true"}); err != nil {
		t.Fatal(err)
	}
	x.f.Builder.Output = "Step 2/4 : ARG API_KEY\nStep 3/4 : RUN echo $API_KEY\n" + secret + "\nDEBUG=true\n"
	x.f.Runtime.LogText = "starting with key " + secret + "\n"
	d := x.deploy(engine.DeployRequest{})
	if d.Status != berth.StatusLive {
		t.Fatalf("deployment %s: %s", d.Status, d.Error)
	}
	log := x.log(d)
	if strings.Contains(log, secret) || !strings.Contains(log, "\n"+engine.Masked+"\n") || !strings.Contains(log, "DEBUG=true") {
		t.Errorf("deployment log:\n%s", log)
	}
	var b bytes.Buffer
	if err := x.e.Logs(ctx, x.app, engine.LogOptions{Tail: 10}, &b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), secret) || strings.Count(b.String(), "starting with key "+engine.Masked+"\n") != 2 {
		t.Errorf("runtime logs:\n%s", b.String())
	}

	// A container that crashes with the secret in its last lines.
	x.f.Runtime.Crash = func(string) bool { return true }
	x.f.Runtime.LogText = "panic: bad key " + secret + "\n"
	d = x.deploy(engine.DeployRequest{})
	if d.Status != berth.StatusFailed || !strings.Contains(d.Error, "panic: bad key "+engine.Masked) || strings.Contains(d.Error, secret) {
		t.Errorf("failed deployment error %q", d.Error)
	}
	if log := x.log(d); strings.Contains(log, secret) {
		t.Errorf("failed deployment log:\n%s", log)
	}
}
