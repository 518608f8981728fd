package build

import (
	"errors"
	"testing"
	"time"

	"github.com/fornax-dev/fornax/internal/messages"
	"github.com/fornax-dev/fornax/internal/records"
)

func running() *records.Version {
	return &records.Version{ID: "ver_1", Status: records.StatusRunning,
		Stages: []records.Stage{{Name: records.StageClone, Status: records.StagePending}}}
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func ev(seq int64, kind, stage, status string) *messages.Event {
	return &messages.Event{Seq: seq, Kind: kind, Stage: stage, Status: status, Time: t0.Add(time.Duration(seq) * time.Second)}
}

func mustApply(t *testing.T, v *records.Version, e *messages.Event) {
	t.Helper()
	if err := Apply(v, e); err != nil {
		t.Fatalf("apply %+v: %v", e, err)
	}
}

func TestApplyMovesStagesForward(t *testing.T) {
	v := running()
	mustApply(t, v, ev(1, messages.EventStage, records.StageClone, records.StatusRunning))
	mustApply(t, v, ev(2, messages.EventStage, records.StageClone, records.StatusSuccess))
	mustApply(t, v, &messages.Event{Seq: 3, Kind: messages.EventPlan, Stages: []string{"clone", "pre_build", "build", "push"}})
	mustApply(t, v, ev(4, messages.EventStage, records.StageBuild, records.StatusRunning))
	want := []string{"clone", "pre_build", "build", "push"}
	if len(v.Stages) != len(want) {
		t.Fatalf("stages %+v", v.Stages)
	}
	for i, n := range want {
		if v.Stages[i].Name != n {
			t.Fatalf("stage %d is %s, want %s", i, v.Stages[i].Name, n)
		}
	}
	c := v.Stages[0]
	if c.Status != records.StatusSuccess || !c.StartedAt.Equal(t0.Add(time.Second)) || !c.FinishedAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("clone stage %+v", c)
	}
}

func TestApplyIgnoresRepeatsAndLateEvents(t *testing.T) {
	v := running()
	mustApply(t, v, ev(1, messages.EventStage, records.StageClone, records.StatusRunning))
	mustApply(t, v, ev(2, messages.EventStage, records.StageClone, records.StatusSuccess))
	// The "running" event delivered again, after "success": nothing moves back.
	if err := Apply(v, ev(1, messages.EventStage, records.StageClone, records.StatusRunning)); !errors.Is(err, records.ErrNoChange) {
		t.Fatalf("late event changed the version: %v", err)
	}
	if v.Stages[0].Status != records.StatusSuccess {
		t.Fatalf("stage moved back to %s", v.Stages[0].Status)
	}
	if err := Apply(v, ev(2, messages.EventStage, records.StageClone, records.StatusSuccess)); !errors.Is(err, records.ErrNoChange) {
		t.Fatalf("repeated event changed the version: %v", err)
	}
}

func TestApplyFinishClosesStages(t *testing.T) {
	v := running()
	mustApply(t, v, &messages.Event{Seq: 1, Kind: messages.EventPlan, Stages: []string{"clone", "build", "push"}})
	mustApply(t, v, ev(2, messages.EventStage, records.StageClone, records.StatusSuccess))
	mustApply(t, v, ev(3, messages.EventStage, records.StageBuild, records.StatusRunning))
	mustApply(t, v, &messages.Event{Seq: 4, Kind: messages.EventFinished, Status: records.StatusFailed, Error: "boom", Time: t0})
	if v.Status != records.StatusFailed || v.Error != "boom" {
		t.Fatalf("version %s %q", v.Status, v.Error)
	}
	if v.Stages[1].Status != records.StatusFailed || v.Stages[2].Status != records.StageSkipped {
		t.Fatalf("stages not closed: %+v", v.Stages)
	}
	// A finished version takes no more reports, not even a second finish.
	for _, e := range []*messages.Event{
		{Seq: 5, Kind: messages.EventFinished, Status: records.StatusSuccess},
		ev(6, messages.EventStage, records.StagePush, records.StatusRunning),
	} {
		if err := Apply(v, e); !errors.Is(err, records.ErrNoChange) {
			t.Fatalf("finished version changed by %+v", e)
		}
	}
	if v.Status != records.StatusFailed {
		t.Fatalf("status moved to %s", v.Status)
	}
}

func TestApplyIgnoresReportsAfterCancel(t *testing.T) {
	v := running()
	v.Status = records.StatusCancelled
	if err := Apply(v, &messages.Event{Kind: messages.EventFinished, Status: records.StatusSuccess}); !errors.Is(err, records.ErrNoChange) {
		t.Fatal("a cancelled version was moved to success")
	}
}

func TestStatusMachine(t *testing.T) {
	all := []string{records.StatusQueued, records.StatusRunning, records.StatusSuccess, records.StatusFailed, records.StatusCancelled}
	allowed := map[[2]string]bool{
		{"queued", "running"}: true, {"queued", "failed"}: true, {"queued", "cancelled"}: true,
		{"running", "success"}: true, {"running", "failed"}: true, {"running", "cancelled"}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got := records.CanMove(from, to); got != allowed[[2]string{from, to}] {
				t.Errorf("CanMove(%s, %s) = %v", from, to, got)
			}
		}
	}
}
