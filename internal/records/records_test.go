package records_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fornax-dev/fornax/internal/records"
)

func openStore(t *testing.T) *records.Store {
	t.Helper()
	s, err := records.OpenMemory()
	if err != nil {
		t.Fatalf("OpenMemory: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

func newVersion(id, serviceID, status string, created time.Time) *records.Version {
	return &records.Version{
		ID:        id,
		ServiceID: serviceID,
		Owner:     "alice",
		Name:      id,
		Trigger:   records.TriggerAPI,
		Commit:    records.Commit{SHA: "0123456789abcdef", Ref: "refs/heads/main", Message: "msg", Author: "a"},
		Status:    status,
		Stages:    []records.Stage{{Name: records.StageClone, Status: records.StagePending}},
		CreatedAt: created,
	}
}

func stageNames(v *records.Version) []string {
	var out []string
	for _, s := range v.Stages {
		out = append(out, s.Name)
	}
	return out
}

func TestUpdateVersionConcurrentLosesNoUpdate(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if err := s.CreateVersion(ctx, &records.Version{ID: "ver_1", ServiceID: "svc_1", Status: records.StatusRunning, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	var changes atomic.Int64
	s.OnChange = func() { changes.Add(1) }

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			name := fmt.Sprintf("stage-%02d", i)
			_, err := s.UpdateVersion(ctx, "ver_1", func(v *records.Version) error {
				v.Stages = append(v.Stages, records.Stage{Name: name, Status: records.StatusRunning})
				return nil
			})
			errs <- err
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("UpdateVersion: %v", err)
		}
	}

	v, err := s.GetVersion(ctx, "ver_1")
	if err != nil {
		t.Fatal(err)
	}
	got := stageNames(v)
	sort.Strings(got)
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("stage-%02d", i))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stages after %d concurrent appends = %v (%d), want all %d exactly once", n, got, len(got), n)
	}
	if c := changes.Load(); c != n {
		t.Errorf("OnChange called %d times, want %d (once per successful write)", c, n)
	}
}

func TestUpdateVersionNoChangeLeavesRecord(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if err := s.CreateVersion(ctx, newVersion("ver_1", "svc_1", records.StatusSuccess, t0)); err != nil {
		t.Fatal(err)
	}
	before, err := s.GetVersion(ctx, "ver_1")
	if err != nil {
		t.Fatal(err)
	}
	called := false
	s.OnChange = func() { called = true }

	_, err = s.UpdateVersion(ctx, "ver_1", func(v *records.Version) error {
		v.Status = records.StatusFailed // must not be written
		v.Error = "should not stick"
		return records.ErrNoChange
	})
	if !errors.Is(err, records.ErrNoChange) {
		t.Fatalf("UpdateVersion err = %v, want ErrNoChange passed through", err)
	}
	if called {
		t.Error("OnChange was called for an update that returned ErrNoChange")
	}
	after, err := s.GetVersion(ctx, "ver_1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("record changed by an ErrNoChange update:\nbefore %+v\nafter  %+v", before, after)
	}
	if before.DocstoreRevision == nil || !reflect.DeepEqual(before.DocstoreRevision, after.DocstoreRevision) {
		t.Errorf("revision went from %v to %v, want unchanged and set", before.DocstoreRevision, after.DocstoreRevision)
	}

	// Another error from fn is returned too and writes nothing.
	boom := errors.New("boom")
	if _, err := s.UpdateVersion(ctx, "ver_1", func(v *records.Version) error {
		v.Error = "x"
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("UpdateVersion err = %v, want fn's error", err)
	}
	if v, _ := s.GetVersion(ctx, "ver_1"); v.Error != "" {
		t.Errorf("failed update wrote Error = %q", v.Error)
	}

	// A real change does move the revision and calls OnChange.
	if _, err := s.UpdateVersion(ctx, "ver_1", func(v *records.Version) error {
		v.Error = "changed"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	changed, _ := s.GetVersion(ctx, "ver_1")
	if reflect.DeepEqual(changed.DocstoreRevision, before.DocstoreRevision) {
		t.Error("revision did not change after a write")
	}
	if !called {
		t.Error("OnChange not called after a write")
	}
}

func TestUpdateVersionMissing(t *testing.T) {
	s := openStore(t)
	_, err := s.UpdateVersion(context.Background(), "ver_nope", func(*records.Version) error {
		t.Error("fn called for a missing version")
		return nil
	})
	if !errors.Is(err, records.ErrNotFound) {
		t.Errorf("err = %v, want ErrNotFound", err)
	}
	if _, err := s.GetVersion(context.Background(), "ver_nope"); !errors.Is(err, records.ErrNotFound) {
		t.Errorf("GetVersion err = %v, want ErrNotFound", err)
	}
}

func TestCreateVersionTwiceExists(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if err := s.CreateVersion(ctx, newVersion("ver_1", "svc", records.StatusQueued, t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateVersion(ctx, newVersion("ver_1", "svc", records.StatusQueued, t0)); !errors.Is(err, records.ErrExists) {
		t.Errorf("second CreateVersion err = %v, want ErrExists", err)
	}
}

func TestReserveName(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)

	got, err := s.ReserveName(ctx, "svc_1", "v1.0", "ver_a", true)
	if err != nil || got != "v1.0" {
		t.Fatalf("first exact reserve = %q, %v; want v1.0", got, err)
	}
	if _, err := s.ReserveName(ctx, "svc_1", "v1.0", "ver_b", true); !errors.Is(err, records.ErrExists) {
		t.Errorf("exact clash err = %v, want ErrExists", err)
	}
	// Another service may use the same name.
	if got, err := s.ReserveName(ctx, "svc_2", "v1.0", "ver_c", true); err != nil || got != "v1.0" {
		t.Errorf("same name in other service = %q, %v; want v1.0", got, err)
	}

	for _, want := range []string{"v1.0-2", "v1.0-3", "v1.0-4"} {
		got, err := s.ReserveName(ctx, "svc_1", "v1.0", "ver_x", false)
		if err != nil || got != want {
			t.Errorf("non-exact reserve = %q, %v; want %q", got, err, want)
		}
	}

	// ReleaseName frees the name for reuse, exactly.
	if err := s.ReleaseName(ctx, "svc_1", "v1.0"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ReserveName(ctx, "svc_1", "v1.0", "ver_d", true); err != nil || got != "v1.0" {
		t.Errorf("reserve after release = %q, %v; want v1.0", got, err)
	}
	// Releasing a name that is not reserved is fine.
	if err := s.ReleaseName(ctx, "svc_1", "never-reserved"); err != nil {
		t.Errorf("release of unreserved name: %v", err)
	}
}

func TestReserveNameLongNameStaysWithin128(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	for _, l := range []int{126, 127, 128} {
		// Distinct from the first character on, so that truncated
		// candidates of different lengths cannot meet.
		prefix := fmt.Sprintf("n%d", l)
		name := prefix + strings.Repeat("a", l-len(prefix)-1) + "z"
		seen := map[string]bool{}
		for i := 1; i <= 11; i++ { // past "-10": a three-character suffix
			got, err := s.ReserveName(ctx, "svc", name, fmt.Sprintf("ver_%d", i), false)
			if err != nil {
				t.Fatalf("len %d reserve #%d: %v", l, i, err)
			}
			if len(got) > 128 {
				t.Errorf("len %d reserve #%d: got %d chars %q, want ≤128", l, i, len(got), got)
			}
			if seen[got] {
				t.Errorf("len %d reserve #%d: %q handed out twice", l, i, got)
			}
			seen[got] = true
			if i == 1 && got != name {
				t.Errorf("first reserve changed the name to %q", got)
			}
			if i > 1 && !strings.HasSuffix(got, fmt.Sprintf("-%d", i)) {
				t.Errorf("len %d reserve #%d: %q lacks suffix -%d", l, i, got, i)
			}
			if i > 1 && !strings.HasPrefix(name, strings.TrimSuffix(got, fmt.Sprintf("-%d", i))) {
				t.Errorf("len %d reserve #%d: %q is not a prefix of the name plus suffix", l, i, got)
			}
		}
	}
}

func TestRecordDeliveryTwice(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	d := &records.Delivery{ID: "svc_1/abc", CreatedAt: t0}
	if err := s.RecordDelivery(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDelivery(ctx, &records.Delivery{ID: "svc_1/abc", CreatedAt: t0}); !errors.Is(err, records.ErrExists) {
		t.Errorf("second RecordDelivery err = %v, want ErrExists", err)
	}
	if err := s.SetDeliveryVersion(ctx, "svc_1/abc", "ver_9"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDelivery(ctx, "svc_1/abc")
	if err != nil || got.VersionID != "ver_9" {
		t.Errorf("GetDelivery = %+v, %v; want version ver_9", got, err)
	}
	if err := s.ForgetDelivery(ctx, "svc_1/abc"); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDelivery(ctx, &records.Delivery{ID: "svc_1/abc"}); err != nil {
		t.Errorf("RecordDelivery after ForgetDelivery: %v", err)
	}
}

func seed(t *testing.T, ctx context.Context, s *records.Store) {
	t.Helper()
	svcs := []*records.Service{
		{ID: "svc_1", Owner: "alice", Name: "web", Description: "the site",
			Repository:    records.Repository{URL: "https://example.com/a/web.git", VCS: "git", Username: "u", Token: []byte{1, 2, 3}, Status: records.RepoHealthy, CheckedAt: t0},
			WebhookSecret: []byte("enc-secret"), CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)},
		{ID: "svc_2", Owner: "alice", Name: "api", Repository: records.Repository{URL: "https://example.com/a/api.git", VCS: "git", Status: records.RepoMissing, StatusReason: "gone"}, CreatedAt: t0},
		{ID: "svc_3", Owner: "bob", Name: "other", CreatedAt: t0},
	}
	for _, svc := range svcs {
		if err := s.CreateService(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	v1 := newVersion("ver_1", "svc_1", records.StatusSuccess, t0)
	v1.Stages = []records.Stage{
		{Name: records.StageClone, Status: records.StatusSuccess, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(2 * time.Second)},
		{Name: records.StageBuild, Status: records.StatusFailed, StartedAt: t0.Add(3 * time.Second), FinishedAt: t0.Add(4 * time.Second), Error: "exit 1"},
		{Name: records.StagePush, Status: records.StageSkipped},
	}
	v1.Image = records.Image{Ref: "reg/alice/web:ver_1", Digest: "sha256:abc"}
	v1.Runner = "process:run_x"
	v1.EventSeq = 7
	v1.StartedAt = t0.Add(time.Second)
	v1.FinishedAt = t0.Add(5 * time.Second)
	v1.Deadline = t0.Add(time.Hour)
	v2 := newVersion("ver_2", "svc_1", records.StatusQueued, t0.Add(time.Minute))
	for _, v := range []*records.Version{v1, v2} {
		if err := s.CreateVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordDelivery(ctx, &records.Delivery{ID: "svc_1/d1", VersionID: "ver_1", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ name, ver string }{{"ver_1", "ver_1"}, {"ver_2", "ver_2"}} {
		if _, err := s.ReserveName(ctx, "svc_1", n.name, n.ver, true); err != nil {
			t.Fatal(err)
		}
	}
}

// normalize drops revisions and sorts, so snapshots of two stores compare.
func normalize(snap *records.Snapshot) *records.Snapshot {
	c := *snap
	for _, x := range c.Services {
		x.DocstoreRevision = nil
	}
	for _, x := range c.Versions {
		x.DocstoreRevision = nil
	}
	for _, x := range c.Deliveries {
		x.DocstoreRevision = nil
	}
	for _, x := range c.VersionNames {
		x.DocstoreRevision = nil
	}
	sort.Slice(c.Services, func(i, j int) bool { return c.Services[i].ID < c.Services[j].ID })
	sort.Slice(c.Versions, func(i, j int) bool { return c.Versions[i].ID < c.Versions[j].ID })
	sort.Slice(c.Deliveries, func(i, j int) bool { return c.Deliveries[i].ID < c.Deliveries[j].ID })
	sort.Slice(c.VersionNames, func(i, j int) bool { return c.VersionNames[i].ID < c.VersionNames[j].ID })
	return &c
}

func TestDumpLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := openStore(t)
	seed(t, ctx, src)
	snap, err := src.Dump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Services) != 3 || len(snap.Versions) != 2 || len(snap.Deliveries) != 1 || len(snap.VersionNames) != 2 {
		t.Fatalf("dump has %d services, %d versions, %d deliveries, %d names; want 3, 2, 1, 2",
			len(snap.Services), len(snap.Versions), len(snap.Deliveries), len(snap.VersionNames))
	}
	want := normalize(snap)

	// Local mode keeps the snapshot as JSON on disk: go through that too.
	for _, viaJSON := range []bool{false, true} {
		t.Run(fmt.Sprintf("json=%v", viaJSON), func(t *testing.T) {
			in := snap
			if viaJSON {
				data, err := json.Marshal(snap)
				if err != nil {
					t.Fatal(err)
				}
				in = &records.Snapshot{}
				if err := json.Unmarshal(data, in); err != nil {
					t.Fatal(err)
				}
			} else {
				// Load must not depend on the dumped structs' revisions.
				in, _ = src.Dump(ctx)
			}
			dst := openStore(t)
			if err := dst.Load(ctx, in); err != nil {
				t.Fatalf("Load: %v", err)
			}
			again, err := dst.Dump(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := normalize(again)
			for i := range want.Versions {
				w, g := want.Versions[i], got.Versions[i]
				if !w.CreatedAt.Equal(g.CreatedAt) || !w.FinishedAt.Equal(g.FinishedAt) || !w.Deadline.Equal(g.Deadline) {
					t.Errorf("version %s times changed: %v/%v/%v → %v/%v/%v", w.ID, w.CreatedAt, w.FinishedAt, w.Deadline, g.CreatedAt, g.FinishedAt, g.Deadline)
				}
				for j := range w.Stages {
					if j >= len(g.Stages) || !w.Stages[j].StartedAt.Equal(g.Stages[j].StartedAt) || !w.Stages[j].FinishedAt.Equal(g.Stages[j].FinishedAt) {
						t.Errorf("version %s stage %d times changed", w.ID, j)
					}
				}
			}
			// Compare through JSON so equal instants in different
			// representations (location, monotonic clock) compare equal.
			wj, _ := json.Marshal(want)
			gj, _ := json.Marshal(got)
			if string(wj) != string(gj) {
				t.Errorf("round trip changed the records:\nwant %s\ngot  %s", wj, gj)
			}

			// The loaded records are usable: names still clash, deliveries
			// still dedupe, services list, and versions update under the
			// revision guard.
			if _, err := dst.ReserveName(ctx, "svc_1", "ver_1", "ver_z", true); !errors.Is(err, records.ErrExists) {
				t.Errorf("loaded name reservation not honoured: %v", err)
			}
			if err := dst.RecordDelivery(ctx, &records.Delivery{ID: "svc_1/d1"}); !errors.Is(err, records.ErrExists) {
				t.Errorf("loaded delivery not honoured: %v", err)
			}
			if svcs, err := dst.ListServices(ctx, "alice"); err != nil || len(svcs) != 2 {
				t.Errorf("ListServices after load = %d, %v; want 2", len(svcs), err)
			}
			v2, err := dst.GetVersion(ctx, "ver_2")
			if err != nil {
				t.Fatal(err)
			}
			if v2.DocstoreRevision == nil {
				t.Error("loaded version has no revision")
			}
			var wg sync.WaitGroup
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := dst.UpdateVersion(ctx, "ver_2", func(v *records.Version) error {
						v.Stages = append(v.Stages, records.Stage{Name: fmt.Sprintf("s%d", i), Status: records.StagePending})
						return nil
					}); err != nil {
						t.Errorf("UpdateVersion after load: %v", err)
					}
				}()
			}
			wg.Wait()
			v2, _ = dst.GetVersion(ctx, "ver_2")
			if len(v2.Stages) != 11 { // clone + 10
				t.Errorf("after 10 concurrent updates of a loaded version: %d stages %v, want 11", len(v2.Stages), stageNames(v2))
			}
			if _, err := dst.UpdateService(ctx, "svc_1", func(s *records.Service) error {
				s.Description = "changed"
				return nil
			}); err != nil {
				t.Errorf("UpdateService after load: %v", err)
			}
		})
	}
}

func TestLoadRejectsUnknownFormat(t *testing.T) {
	s := openStore(t)
	if err := s.Load(context.Background(), &records.Snapshot{Format: 2}); err == nil {
		t.Error("Load of format 2 succeeded")
	}
}

func TestListOrders(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	// Created out of order; ver_c and ver_d share a creation time.
	vs := []*records.Version{
		newVersion("ver_b", "svc_1", records.StatusQueued, t0.Add(2*time.Minute)),
		newVersion("ver_a", "svc_1", records.StatusQueued, t0),
		newVersion("ver_c", "svc_1", records.StatusRunning, t0.Add(time.Minute)),
		newVersion("ver_d", "svc_1", records.StatusQueued, t0.Add(time.Minute)),
		newVersion("ver_e", "svc_1", records.StatusQueued, t0.Add(3*time.Minute)),
		newVersion("ver_o", "svc_2", records.StatusQueued, t0.Add(time.Hour)),
	}
	for _, v := range vs {
		if err := s.CreateVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(vs []*records.Version) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.ID)
		}
		return out
	}

	list, err := s.ListVersions(ctx, "svc_1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(list), []string{"ver_e", "ver_b", "ver_d", "ver_c", "ver_a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ListVersions = %v, want newest first %v", got, want)
	}
	queued, err := s.VersionsWithStatus(ctx, records.StatusQueued)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(queued), []string{"ver_a", "ver_d", "ver_b", "ver_e", "ver_o"}; !reflect.DeepEqual(got, want) {
		t.Errorf("VersionsWithStatus(queued) = %v, want oldest first %v", got, want)
	}
	running, _ := s.VersionsWithStatus(ctx, records.StatusRunning)
	if got := ids(running); !reflect.DeepEqual(got, []string{"ver_c"}) {
		t.Errorf("VersionsWithStatus(running) = %v", got)
	}
	if none, err := s.ListVersions(ctx, "svc_none"); err != nil || len(none) != 0 {
		t.Errorf("ListVersions of unknown service = %v, %v", ids(none), err)
	}

	// DeleteVersion removes the version and frees its name.
	if _, err := s.ReserveName(ctx, "svc_1", "ver_a", "ver_a", true); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteVersion(ctx, vs[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetVersion(ctx, "ver_a"); !errors.Is(err, records.ErrNotFound) {
		t.Errorf("GetVersion after delete: %v", err)
	}
	if _, err := s.ReserveName(ctx, "svc_1", "ver_a", "ver_new", true); err != nil {
		t.Errorf("name of deleted version still reserved: %v", err)
	}
}

func TestListServicesOnlyOwners(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	for _, svc := range []*records.Service{
		{ID: "svc_1", Owner: "alice", Name: "zeta"},
		{ID: "svc_2", Owner: "bob", Name: "alpha"},
		{ID: "svc_3", Owner: "alice", Name: "beta"},
		{ID: "svc_4", Owner: "alice2", Name: "gamma"},
	} {
		if err := s.CreateService(ctx, svc); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateService(ctx, &records.Service{ID: "svc_1", Owner: "alice"}); !errors.Is(err, records.ErrExists) {
		t.Errorf("duplicate CreateService err = %v, want ErrExists", err)
	}
	list, err := s.ListServices(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, svc := range list {
		if svc.Owner != "alice" {
			t.Errorf("ListServices(alice) returned %s of %s", svc.ID, svc.Owner)
		}
		names = append(names, svc.Name)
	}
	if want := []string{"beta", "zeta"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ListServices(alice) names = %v, want %v", names, want)
	}
	if list, _ := s.ListServices(ctx, "carol"); len(list) != 0 {
		t.Errorf("ListServices(carol) = %d services, want none", len(list))
	}
	if err := s.DeleteService(ctx, "svc_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetService(ctx, "svc_1"); !errors.Is(err, records.ErrNotFound) {
		t.Errorf("GetService after delete: %v", err)
	}
	if err := s.DeleteService(ctx, "svc_1"); err != nil {
		t.Errorf("second DeleteService: %v", err)
	}
}

func TestOpenTemplate(t *testing.T) {
	ctx := context.Background()
	if s, err := records.Open(ctx, "mem://fornax_services/id"); err == nil {
		s.Close()
		t.Error("Open without {collection} succeeded")
	}
	// A valid template opens all four collections, each its own.
	prefix := fmt.Sprintf("fornaxtest%d_", time.Now().UnixNano())
	s, err := records.Open(ctx, "mem://"+prefix+"{collection}/id")
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.CreateVersion(ctx, newVersion("same", "svc", records.StatusQueued, t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateService(ctx, &records.Service{ID: "same", Owner: "alice"}); err != nil {
		t.Errorf("service and version with the same id clash, so collections are shared: %v", err)
	}
}

func TestCanMove(t *testing.T) {
	all := []string{records.StatusQueued, records.StatusRunning, records.StatusSuccess, records.StatusFailed, records.StatusCancelled}
	allowed := map[[2]string]bool{
		{records.StatusQueued, records.StatusRunning}:    true,
		{records.StatusQueued, records.StatusFailed}:     true,
		{records.StatusQueued, records.StatusCancelled}:  true,
		{records.StatusRunning, records.StatusSuccess}:   true,
		{records.StatusRunning, records.StatusFailed}:    true,
		{records.StatusRunning, records.StatusCancelled}: true,
	}
	for _, from := range all {
		for _, to := range all {
			if got, want := records.CanMove(from, to), allowed[[2]string{from, to}]; got != want {
				t.Errorf("CanMove(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
		if got, want := records.Terminal(from), from == records.StatusSuccess || from == records.StatusFailed || from == records.StatusCancelled; got != want {
			t.Errorf("Terminal(%s) = %v, want %v", from, got, want)
		}
	}
	if records.CanMove("", records.StatusRunning) || records.CanMove("bogus", records.StatusFailed) {
		t.Error("CanMove from an unknown status allowed")
	}
}

func TestCanMoveStage(t *testing.T) {
	rank := map[string]int{
		"": 0, records.StagePending: 0,
		records.StatusRunning: 1,
		records.StatusSuccess: 2, records.StatusFailed: 2, records.StatusCancelled: 2, records.StageSkipped: 2,
	}
	for from, rf := range rank {
		for to, rt := range rank {
			if got, want := records.CanMoveStage(from, to), rt > rf; got != want {
				t.Errorf("CanMoveStage(%q, %q) = %v, want %v", from, to, got, want)
			}
		}
	}
	// Spot checks that spell out the rule.
	for _, c := range []struct {
		from, to string
		want     bool
	}{
		{records.StagePending, records.StatusRunning, true},
		{records.StagePending, records.StageSkipped, true},
		{records.StatusRunning, records.StatusSuccess, true},
		{records.StatusRunning, records.StagePending, false},
		{records.StatusSuccess, records.StatusRunning, false},
		{records.StatusFailed, records.StatusSuccess, false},
		{records.StatusRunning, records.StatusRunning, false},
	} {
		if got := records.CanMoveStage(c.from, c.to); got != c.want {
			t.Errorf("CanMoveStage(%s, %s) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	if len(records.StageOrder) != 6 || records.StageOrder[0] != records.StageClone || records.StageOrder[5] != records.StagePostBuild {
		t.Errorf("StageOrder = %v", records.StageOrder)
	}
}
