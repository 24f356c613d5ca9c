package docker_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/docker"
	"github.com/berthhq/berth/docker/dockertest"
)

// statsScript holds 16 MB in a shell variable, burns some CPU, pings the
// gateway (traffic both ways) and waits, the shell (and its memory) alive.
const statsScript = `x=$(head -c 16000000 /dev/zero | tr '\0' a)
i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done
gw=$(ip route | awk '/^default/ {print $3}')
ping -c 2 -W 1 "$gw" >/dev/null 2>&1
echo ready
sleep 3600 & wait $!`

func TestStats(t *testing.T) {
	eng := dockertest.Engine(t)
	labels := dockertest.Cleanup(t, eng)
	img := dockertest.Busybox(t, eng)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := eng.RunService(ctx, docker.ServiceSpec{
		Name: dockertest.Name("stats"), Image: img, Labels: labels,
		Cmd: []string{"sh", "-c", statsScript},
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the container ready", func() error {
		rec := &lineRecorder{}
		if err := eng.Logs(ctx, c.ID, -1, false, rec); err != nil {
			return err
		}
		if !slices.Contains(rec.writes, "ready\n") {
			return fmt.Errorf("logs so far: %q", rec.writes)
		}
		return nil
	})
	first, err := eng.Stats(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID != c.ID || first.Read.IsZero() || time.Since(first.Read) > time.Minute {
		t.Errorf("reading %+v: want the container's ID and a recent time", first)
	}
	if first.MemoryBytes < 16<<20 || first.MemoryLimit < first.MemoryBytes {
		t.Errorf("memory %d of %d: want at least 16 MiB in use, within the limit", first.MemoryBytes, first.MemoryLimit)
	}
	if first.CPUNanos == 0 || first.SystemNanos == 0 || first.OnlineCPUs < 1 {
		t.Errorf("cpu %d ns, system %d ns, %d CPUs: want all non-zero", first.CPUNanos, first.SystemNanos, first.OnlineCPUs)
	}
	if first.RxBytes == 0 || first.TxBytes == 0 {
		t.Errorf("network rx %d tx %d: want traffic both ways", first.RxBytes, first.TxBytes)
	}
	time.Sleep(1100 * time.Millisecond)
	second, err := eng.Stats(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Read.After(first.Read) || second.SystemNanos <= first.SystemNanos || second.CPUNanos < first.CPUNanos {
		t.Errorf("second reading %+v does not follow the first %+v", second, first)
	}

	if _, err := eng.Stats(ctx, "berth-test-no-such-container"); !berth.IsKind(err, berth.NotFound) {
		t.Errorf("missing container: %v, want NotFound", err)
	}
	if _, err := eng.Stats(ctx, "../../etc"); !berth.IsKind(err, berth.Invalid) {
		t.Errorf("hostile ID: %v, want Invalid", err)
	}
}
