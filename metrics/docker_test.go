package metrics_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/docker"
	"github.com/berthhq/berth/docker/dockertest"
	"github.com/berthhq/berth/metrics"
)

var _ metrics.Runtime = (*docker.Engine)(nil)

// TestSampleDocker samples a busybox container labelled as a replica of a
// berth app, on the real engine: the stored sample shows the memory the
// container holds.
func TestSampleDocker(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := dockertest.Cleanup(t, eng)
	img := dockertest.Busybox(t, eng)
	st := open(t, filepath.Join(t.TempDir(), "berth.db"))
	tm, apps := team(t, st, "acme", "web")
	instance := berth.NewID("inst")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// RunService takes a command (Run takes the image's own); the labels
	// make it a replica of app web as the engine labels one.
	c, err := eng.RunService(ctx, docker.ServiceSpec{
		Name: dockertest.Name("metrics"), Image: img,
		Labels: dockertest.With(labels, map[string]string{
			berth.LabelManaged: "true", berth.LabelInstance: instance, berth.LabelRole: "app",
			berth.LabelTeam: tm.ID, berth.LabelApp: apps[0].ID, berth.LabelAppName: "web",
		}),
		Cmd: []string{"sh", "-c", `x=$(head -c 12000000 /dev/zero | tr '\0' a); while :; do sleep 1; done`},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := metrics.New(metrics.Config{Store: st, Runtime: eng, Instance: instance})
	var got []berth.MetricSample
	deadline := time.Now().Add(time.Minute)
	for len(got) == 0 || got[0].MemoryBytes < 12<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("no sample with 12 MB of memory within a minute; last %+v", got)
		}
		time.Sleep(time.Second)
		if got, err = s.Sample(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := st.MetricSamples(ctx, tm.ID, apps[0].ID, time.Now().Add(-time.Hour))
	if err != nil || len(stored) == 0 {
		t.Fatalf("stored samples %+v, %v", stored, err)
	}
	m := stored[len(stored)-1]
	if m.Replicas != 1 || m.MemoryBytes < 12<<20 || m.MemoryLimit < m.MemoryBytes || m.CPUPercent < 0 {
		t.Errorf("sample of container %s: %+v", c.Name, m)
	}
	t.Logf("sample: cpu %.2f%%, memory %d B of %d, rx %.1f B/s, tx %.1f B/s", m.CPUPercent, m.MemoryBytes, m.MemoryLimit, m.RxRate, m.TxRate)
}
