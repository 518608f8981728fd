package build

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fornax-dev/fornax/internal/executor/process"
	"github.com/fornax-dev/fornax/internal/records"
)

// A runner that died never reports: Sweep must fail its version once the
// deadline and the grace period have passed, and leave others alone.
func TestSweepFailsSilentRunners(t *testing.T) {
	ctx := context.Background()
	store, err := records.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	mk := func(id string, deadline time.Time) {
		v := &records.Version{ID: id, ServiceID: "svc", Status: records.StatusRunning, StartedAt: deadline.Add(-30 * time.Minute), Deadline: deadline,
			Stages: []records.Stage{{Name: records.StageClone, Status: records.StatusRunning}}, Runner: "process:run_gone"}
		if err := store.CreateVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	mk("overdue", now.Add(-2*time.Minute))
	mk("in-grace", now.Add(-30*time.Second))
	mk("on-time", now.Add(10*time.Minute))
	f := New(Deps{Store: store, Executor: &process.Executor{WorkRoot: t.TempDir()}, Grace: time.Minute, Now: func() time.Time { return now }})
	if err := f.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"overdue": records.StatusFailed, "in-grace": records.StatusRunning, "on-time": records.StatusRunning} {
		v, err := store.GetVersion(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != want {
			t.Errorf("%s: %s, want %s", id, v.Status, want)
		}
		if want == records.StatusFailed && (!strings.Contains(v.Error, "timed out") || v.Stages[0].Status != records.StatusFailed) {
			t.Errorf("%s: error %q, stage %s", id, v.Error, v.Stages[0].Status)
		}
	}
}
