package trigger_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"gocloud.dev/pubsub"

	"github.com/fornax-dev/fornax/internal/messages"
	"github.com/fornax-dev/fornax/internal/queue/memqueue"
	"github.com/fornax-dev/fornax/internal/records"
	"github.com/fornax-dev/fornax/internal/trigger"
)

func TestNameFor(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, c := range []struct{ in, want string }{
		{"v1.0.0", "v1.0.0"},
		{"v1.0.0+build.7", "v1.0.0-build.7"},
		{"feature/login-page", "feature-login-page"},
		{"refs heads main", "refs-heads-main"},
		{".hidden", "hidden"},
		{"-dash", "dash"},
		{"..--.x", "x"},
		{"/leading/slash", "leading-slash"}, // '/' becomes '-', then is stripped
		{"_under", "_under"},
		{"café", "caf--"}, // each byte of a non-ASCII character is replaced
		{"x日本", "x------"},
		{"日本", ""}, // nothing valid left
		{"a@b#c$d", "a-b-c-d"},
		{long, long[:128]},
		{"--" + long, long[:128]}, // stripped first, then cut
		{"", ""},
		{"...", ""},
	} {
		got := trigger.NameFor(c.in)
		if got != c.want {
			t.Errorf("NameFor(%q) = %q, want %q", c.in, got, c.want)
		}
		if got != "" && !trigger.ValidName(got) {
			t.Errorf("NameFor(%q) = %q is not a valid name", c.in, got)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"v1", true},
		{"abc1234", true},
		{"_x", true},
		{"a.b-c_d", true},
		{"V1.0.0-RC.1", true},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{".x", false},
		{"-x", false},
		{"a/b", false},
		{"a+b", false},
		{"a b", false},
		{"é", false},
		{"x\n", false},
	} {
		if got := trigger.ValidName(c.in); got != c.want {
			t.Errorf("ValidName(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestShortSHA(t *testing.T) {
	for in, want := range map[string]string{
		"0123456789abcdef0123456789abcdef01234567": "0123456",
		"01234567": "0123456",
		"0123456":  "0123456",
		"abc":      "abc",
		"":         "",
	} {
		if got := trigger.ShortSHA(in); got != want {
			t.Errorf("ShortSHA(%q) = %q, want %q", in, got, want)
		}
	}
}

var now = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func runningVersion() *records.Version {
	return &records.Version{
		ID:     "ver_1",
		Status: records.StatusRunning,
		Stages: []records.Stage{
			{Name: records.StageClone, Status: records.StatusSuccess, FinishedAt: now.Add(-time.Minute)},
			{Name: records.StageBuild, Status: records.StatusRunning},
			{Name: records.StagePush, Status: records.StagePending},
			{Name: records.StagePostBuild, Status: ""},
		},
	}
}

func TestFinishFailed(t *testing.T) {
	v := runningVersion()
	if err := trigger.Fail(v, "runner lost", now); err != nil {
		t.Fatal(err)
	}
	if v.Status != records.StatusFailed || v.Error != "runner lost" || !v.FinishedAt.Equal(now) {
		t.Errorf("version = %s %q %v", v.Status, v.Error, v.FinishedAt)
	}
	want := []records.Stage{
		{Name: records.StageClone, Status: records.StatusSuccess, FinishedAt: now.Add(-time.Minute)},
		{Name: records.StageBuild, Status: records.StatusFailed, FinishedAt: now, Error: "runner lost"},
		{Name: records.StagePush, Status: records.StageSkipped},
		{Name: records.StagePostBuild, Status: records.StageSkipped},
	}
	if !reflect.DeepEqual(v.Stages, want) {
		t.Errorf("stages = %+v\nwant %+v", v.Stages, want)
	}
}

func TestFinishCancelled(t *testing.T) {
	v := runningVersion()
	v.Stages[1].Error = "earlier"
	if err := trigger.Finish(v, records.StatusCancelled, "stopped by alice", now); err != nil {
		t.Fatal(err)
	}
	if v.Status != records.StatusCancelled || v.Error != "stopped by alice" {
		t.Errorf("version = %s %q", v.Status, v.Error)
	}
	if s := v.Stages[1]; s.Status != records.StatusCancelled || !s.FinishedAt.Equal(now) || s.Error != "earlier" {
		t.Errorf("running stage = %+v, want cancelled at now with its error kept", s)
	}
	if v.Stages[2].Status != records.StageSkipped || v.Stages[3].Status != records.StageSkipped {
		t.Errorf("pending stages = %s, %s; want skipped", v.Stages[2].Status, v.Stages[3].Status)
	}
	if v.Stages[0].Status != records.StatusSuccess {
		t.Errorf("finished stage changed to %s", v.Stages[0].Status)
	}
}

func TestFinishSuccessWithRunningStage(t *testing.T) {
	// A stage still running when the version is called a success did not
	// finish: it must not be shown as successful.
	v := runningVersion()
	if err := trigger.Finish(v, records.StatusSuccess, "", now); err != nil {
		t.Fatal(err)
	}
	if v.Status != records.StatusSuccess {
		t.Errorf("status = %s", v.Status)
	}
	if v.Stages[1].Status != records.StatusFailed {
		t.Errorf("running stage became %s, want failed", v.Stages[1].Status)
	}
}

func TestFinishQueued(t *testing.T) {
	v := &records.Version{Status: records.StatusQueued, Stages: []records.Stage{{Name: records.StageClone, Status: records.StagePending}}}
	if err := trigger.Fail(v, "no runner", now); err != nil {
		t.Fatal(err)
	}
	if v.Status != records.StatusFailed || v.Stages[0].Status != records.StageSkipped {
		t.Errorf("version %s, clone %s; want failed, skipped", v.Status, v.Stages[0].Status)
	}
	// A queued version never ran, so it cannot succeed.
	v = &records.Version{Status: records.StatusQueued}
	if err := trigger.Finish(v, records.StatusSuccess, "", now); !errors.Is(err, records.ErrNoChange) {
		t.Errorf("queued → success err = %v, want ErrNoChange", err)
	}
}

func TestFinishTerminalRefused(t *testing.T) {
	for _, status := range []string{records.StatusSuccess, records.StatusFailed, records.StatusCancelled} {
		for _, to := range []string{records.StatusSuccess, records.StatusFailed, records.StatusCancelled} {
			v := runningVersion()
			v.Status = status
			v.Error = "original"
			v.FinishedAt = now.Add(-time.Hour)
			before := *v
			before.Stages = append([]records.Stage(nil), v.Stages...)
			if err := trigger.Finish(v, to, "late", now); !errors.Is(err, records.ErrNoChange) {
				t.Errorf("Finish(%s → %s) err = %v, want ErrNoChange", status, to, err)
			}
			if !reflect.DeepEqual(*v, before) {
				t.Errorf("Finish(%s → %s) changed the version:\n%+v\nwas %+v", status, to, *v, before)
			}
		}
	}
}

func TestFinishThroughStoreIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	v := runningVersion()
	if err := s.CreateVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateVersion(ctx, v.ID, func(v *records.Version) error { return trigger.Fail(v, "first", now) }); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateVersion(ctx, v.ID, func(v *records.Version) error {
		return trigger.Finish(v, records.StatusCancelled, "second", now.Add(time.Hour))
	})
	if !errors.Is(err, records.ErrNoChange) {
		t.Errorf("second finish err = %v, want ErrNoChange", err)
	}
	got, _ := s.GetVersion(ctx, v.ID)
	if got.Status != records.StatusFailed || got.Error != "first" || !got.FinishedAt.Equal(now) {
		t.Errorf("stored version = %s %q %v, want the first finish kept", got.Status, got.Error, got.FinishedAt)
	}
}

func openStore(t *testing.T) *records.Store {
	t.Helper()
	s, err := records.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type setup struct {
	store *records.Store
	q     *memqueue.Queue
	sub   *pubsub.Subscription
	tr    *trigger.Trigger
	svc   *records.Service
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	ctx := context.Background()
	s := openStore(t)
	q := memqueue.New()
	sub := q.Subscribe(time.Minute)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sub.Shutdown(sctx)
		_ = q.Topic().Shutdown(sctx)
	})
	svc := &records.Service{ID: "svc_1", Owner: "alice", Name: "web"}
	if err := s.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	return &setup{store: s, q: q, sub: sub, svc: svc,
		tr: &trigger.Trigger{Store: s, Builds: q.Topic(), Now: func() time.Time { return now }}}
}

func (su *setup) receive(t *testing.T) *messages.BuildJob {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := su.sub.Receive(ctx)
	if err != nil {
		t.Fatalf("no build job arrived: %v", err)
	}
	m.Ack()
	var job messages.BuildJob
	if err := messages.Decode(m.Body, &job); err != nil {
		t.Fatalf("decode build job %q: %v", m.Body, err)
	}
	return &job
}

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestStartQueuesVersionAndJob(t *testing.T) {
	ctx := context.Background()
	su := newSetup(t)
	commit := records.Commit{SHA: sha, Ref: "refs/heads/main", Message: "fix", Author: "alice"}
	v, err := su.tr.Start(ctx, trigger.Request{Service: su.svc, Commit: commit, How: records.TriggerPush})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	if v.Name != "0123456" {
		t.Errorf("name = %q, want the short sha", v.Name)
	}
	stored, err := su.store.GetVersion(ctx, v.ID)
	if err != nil {
		t.Fatalf("version not stored: %v", err)
	}
	if stored.Status != records.StatusQueued || stored.ServiceID != "svc_1" || stored.Owner != "alice" ||
		stored.Trigger != records.TriggerPush || stored.Commit != commit || !stored.CreatedAt.Equal(now) || stored.Name != "0123456" {
		t.Errorf("stored version = %+v", stored)
	}
	if want := []records.Stage{{Name: records.StageClone, Status: records.StagePending}}; !reflect.DeepEqual(stored.Stages, want) {
		t.Errorf("stages = %+v, want clone pending", stored.Stages)
	}
	job := su.receive(t)
	if job.VersionID != v.ID || job.ServiceID != "svc_1" || job.V != messages.V {
		t.Errorf("build job = %+v, want version %s of svc_1", job, v.ID)
	}

	// Same commit again: the name clashes and gets a suffix.
	v2, err := su.tr.Start(ctx, trigger.Request{Service: su.svc, Commit: commit, How: records.TriggerAPI})
	if err != nil {
		t.Fatal(err)
	}
	if v2.Name != "0123456-2" || v2.ID == v.ID {
		t.Errorf("second version %s named %q, want a new id named 0123456-2", v2.ID, v2.Name)
	}
	if job := su.receive(t); job.VersionID != v2.ID {
		t.Errorf("second job for %s, want %s", job.VersionID, v2.ID)
	}

	// A chosen name.
	v3, err := su.tr.Start(ctx, trigger.Request{Service: su.svc, Commit: commit, How: records.TriggerTag, Name: "v1.0.0"})
	if err != nil || v3.Name != "v1.0.0" {
		t.Fatalf("Start with name = %v, %v", v3, err)
	}
	su.receive(t)
	list, _ := su.store.ListVersions(ctx, "svc_1")
	if len(list) != 3 {
		t.Errorf("%d versions stored, want 3", len(list))
	}
}

func TestStartExactNameClash(t *testing.T) {
	ctx := context.Background()
	su := newSetup(t)
	req := trigger.Request{Service: su.svc, Commit: records.Commit{SHA: sha}, How: records.TriggerTag, Name: "v1.0.0", ExactName: true}
	if _, err := su.tr.Start(ctx, req); err != nil {
		t.Fatal(err)
	}
	su.receive(t)
	v, err := su.tr.Start(ctx, req)
	if !errors.Is(err, records.ErrExists) {
		t.Errorf("exact clash err = %v (version %v), want ErrExists", err, v)
	}
	if list, _ := su.store.ListVersions(ctx, "svc_1"); len(list) != 1 {
		t.Errorf("%d versions stored after a refused clash, want 1", len(list))
	}
}

func TestStartInvalidName(t *testing.T) {
	ctx := context.Background()
	su := newSetup(t)
	for _, name := range []string{"-bad", "a/b", strings.Repeat("a", 129)} {
		if v, err := su.tr.Start(ctx, trigger.Request{Service: su.svc, Commit: records.Commit{SHA: sha}, How: records.TriggerAPI, Name: name}); err == nil {
			t.Errorf("Start with name %q made %v", name, v)
		}
	}
	// An empty sha gives an empty (invalid) name.
	if _, err := su.tr.Start(ctx, trigger.Request{Service: su.svc, How: records.TriggerAPI}); err == nil {
		t.Error("Start without sha or name succeeded")
	}
	if list, _ := su.store.ListVersions(ctx, "svc_1"); len(list) != 0 {
		t.Errorf("%d versions stored for invalid names", len(list))
	}
	// Nothing was reserved either.
	if _, err := su.store.ReserveName(ctx, "svc_1", "0123456", "ver_x", true); err != nil {
		t.Errorf("name reserved by a failed Start: %v", err)
	}
}

func TestStartQueueDown(t *testing.T) {
	ctx := context.Background()
	su := newSetup(t)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := su.q.Topic().Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	v, err := su.tr.Start(ctx, trigger.Request{Service: su.svc, Commit: records.Commit{SHA: sha}, How: records.TriggerAPI})
	if !errors.Is(err, trigger.ErrQueue) {
		t.Fatalf("Start err = %v, want ErrQueue", err)
	}
	if v == nil {
		t.Fatal("Start returned no version with ErrQueue")
	}
	list, _ := su.store.ListVersions(ctx, "svc_1")
	if len(list) != 1 {
		t.Fatalf("%d versions stored, want the one that failed", len(list))
	}
	stored := list[0]
	if stored.ID != v.ID || v.Status != records.StatusFailed {
		t.Errorf("returned %s %s, stored %s", v.ID, v.Status, stored.ID)
	}
	if stored.Status != records.StatusFailed || !strings.Contains(stored.Error, "queue") || !stored.FinishedAt.Equal(now) {
		t.Errorf("stored version = %s %q %v, want failed with a reason mentioning the queue", stored.Status, stored.Error, stored.FinishedAt)
	}
	if len(stored.Stages) != 1 || stored.Stages[0].Status != records.StageSkipped {
		t.Errorf("stages = %+v, want clone skipped", stored.Stages)
	}
}
