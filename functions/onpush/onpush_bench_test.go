package onpush_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"gocloud.dev/secrets/localsecrets"

	"github.com/fornax-dev/fornax/functions/onpush"
	"github.com/fornax-dev/fornax/internal/forge"
	"github.com/fornax-dev/fornax/internal/forge/github"
	"github.com/fornax-dev/fornax/internal/queue/memqueue"
	"github.com/fornax-dev/fornax/internal/records"
	"github.com/fornax-dev/fornax/internal/trigger"
)

// acceptFixture is the onpush function on the in-memory drivers, served
// over loopback HTTP, with one service whose secret is "bench-secret".
type acceptFixture struct {
	srv   *httptest.Server
	store *records.Store
	svc   *records.Service
}

func newAcceptFixture(tb testing.TB) *acceptFixture {
	tb.Helper()
	ctx := context.Background()
	store, err := records.OpenMemory()
	if err != nil {
		tb.Fatal(err)
	}
	key, _ := localsecrets.NewRandomKey()
	keeper := localsecrets.NewKeeper(key)
	q := memqueue.New()
	sub := q.Subscribe(time.Hour)
	// Drain the build jobs as the build function would, so the queue does
	// not grow without bound during a long run.
	drainCtx, stop := context.WithCancel(ctx)
	go func() {
		for {
			m, err := sub.Receive(drainCtx)
			if err != nil {
				return
			}
			m.Ack()
		}
	}()
	secret, _ := keeper.Encrypt(ctx, []byte("bench-secret"))
	svc := &records.Service{ID: "svc_bench", Owner: "alice", Name: "app", WebhookSecret: secret,
		Repository: records.Repository{URL: "http://127.0.0.1:1/app.git", VCS: "git", Status: records.RepoHealthy}}
	if err := store.CreateService(ctx, svc); err != nil {
		tb.Fatal(err)
	}
	h := onpush.New(onpush.Deps{
		Store: store, Keeper: keeper,
		Trigger: &trigger.Trigger{Store: store, Builds: q.Topic(), Now: time.Now},
		Forges:  map[string]forge.Forge{"github": github.Forge{}},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	srv := httptest.NewServer(h)
	tb.Cleanup(func() { srv.Close(); stop(); q.Topic().Shutdown(ctx); store.Close() })
	return &acceptFixture{srv: srv, store: store, svc: svc}
}

func (f *acceptFixture) deliver(tb testing.TB, client *http.Client, i int) {
	sha := fmt.Sprintf("%040x", i+1)
	body := []byte(`{"ref":"refs/tags/v` + fmt.Sprint(i) + `","after":"` + sha + `","head_commit":{"id":"` + sha + `","message":"m","author":{"name":"A","email":"a@x"}}}`)
	req, _ := http.NewRequest("POST", f.srv.URL+"/webhooks/github/"+f.svc.ID, bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("d-%d", i))
	req.Header.Set("X-Hub-Signature-256", github.Sign(body, []byte("bench-secret")))
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		tb.Fatalf("delivery %d: %d", i, resp.StatusCode)
	}
}

// BenchmarkWebhookAccept measures a GitHub push delivery end to end over
// loopback HTTP: verify the signature, record the delivery and the queued
// version, publish the build job. Reports deliveries/s and p99 latency.
func BenchmarkWebhookAccept(b *testing.B) {
	f := newAcceptFixture(b)
	client := f.srv.Client()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		f.deliver(b, client, i)
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// TestAcceptRecordsAndQueues checks what the benchmark measures really
// happened: each accepted delivery left one queued version.
func TestAcceptRecordsAndQueues(t *testing.T) {
	f := newAcceptFixture(t)
	for i := 0; i < 5; i++ {
		f.deliver(t, f.srv.Client(), i)
	}
	vs, err := f.store.ListVersions(context.Background(), f.svc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 5 {
		t.Fatalf("%d versions", len(vs))
	}
	for _, v := range vs {
		if v.Status != records.StatusQueued || !strings.HasPrefix(v.Name, "v") || v.Trigger != records.TriggerTag {
			t.Fatalf("version %+v", v)
		}
	}
}
