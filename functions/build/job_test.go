package build

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"gocloud.dev/secrets/localsecrets"

	"github.com/fornax-dev/fornax/internal/executor/process"
	"github.com/fornax-dev/fornax/internal/messages"
	"github.com/fornax-dev/fornax/internal/records"
)

// A build job delivered twice (queues are at-least-once) starts one runner:
// only the move from queued to running starts anything.
func TestJobDeliveredTwiceRunsOnce(t *testing.T) {
	ctx := context.Background()
	store, err := records.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	key, _ := localsecrets.NewRandomKey()
	keeper := localsecrets.NewKeeper(key)
	token, _ := keeper.Encrypt(ctx, []byte("repo-token"))
	svc := &records.Service{ID: "svc_1", Owner: "alice", Name: "app",
		Repository: records.Repository{URL: "http://127.0.0.1:1/app.git", VCS: "git", Username: "u", Token: token}}
	if err := store.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	v := &records.Version{ID: "ver_1", ServiceID: svc.ID, Owner: "alice", Name: "abc1234", Status: records.StatusQueued,
		Commit: records.Commit{SHA: "abc1234", Ref: "refs/heads/main"}}
	if err := store.CreateVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	// The runner is a stand-in that only counts its starts: this tests the
	// build function's guard; the real runner runs in the tests/ suites.
	var runs atomic.Int32
	var got messages.RunnerJob
	var gotSecrets messages.RunnerSecrets
	release := make(chan struct{})
	exec := &process.Executor{WorkRoot: t.TempDir(), Runner: func(ctx context.Context, job messages.RunnerJob, sec messages.RunnerSecrets, ws string) error {
		runs.Add(1)
		got, gotSecrets = job, sec
		<-release
		return nil
	}}
	f := New(Deps{Store: store, Keeper: keeper, Executor: exec, Registry: "127.0.0.1:7098", Timeout: time.Minute})
	body, _ := messages.Encode(&messages.BuildJob{VersionID: v.ID, ServiceID: svc.ID})

	first, err := f.HandleJob(ctx, body)
	if err != nil || first == nil {
		t.Fatalf("first delivery: run %v, err %v", first, err)
	}
	second, err := f.HandleJob(ctx, body)
	if err != nil || second != nil {
		t.Fatalf("second delivery started another run (%v) or failed (%v)", second, err)
	}
	close(release)
	<-first.Done()
	if n := runs.Load(); n != 1 {
		t.Fatalf("%d runs", n)
	}
	if got.ImageRef != "127.0.0.1:7098/alice/app:abc1234" || got.SHA != "abc1234" || gotSecrets.RepoToken != "repo-token" {
		t.Fatalf("runner got job %+v, token %q", got, gotSecrets.RepoToken)
	}
	after, _ := store.GetVersion(ctx, v.ID)
	if after.Status != records.StatusRunning || after.Runner != first.Handle() || after.Deadline.IsZero() {
		t.Fatalf("version after start: %+v", after)
	}
}
