package tests

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fornax-dev/fornax/internal/records"
	"github.com/fornax-dev/fornax/internal/testenv"
)

// orchestration runs versions of a FROM scratch image through the whole
// local stack, webhook to pushed image, and splits where the time went
// using the stage timings the runner reported.
type orchestration struct {
	fx     *fornax
	w      *testenv.WorkTree
	svcID  string
	secret string
}

func newOrchestration(b *testing.B, commands int) *orchestration {
	git := testenv.NewGitServer(b)
	fx := startFornax(b, b.TempDir(), nil)
	w := git.NewRepo(b, "app")
	w.WriteFile(b, "Dockerfile", "FROM scratch\nCOPY hello.txt /hello.txt\nCMD [\"/hello\"]\n")
	w.WriteFile(b, "hello.txt", "hello\n")
	cmds := make([]string, commands)
	for i := range cmds {
		cmds[i] = "    - true"
	}
	w.WriteFile(b, "caicloud.yml", "pre_build:\n  commands:\n"+strings.Join(cmds, "\n")+"\n")
	w.Commit(b, "bench")
	w.Push(b, "refs/heads/main")
	svc := fx.createService(aliceToken, "app", git, "app", "bench-secret")
	return &orchestration{fx: fx, w: w, svcID: svc.ID, secret: "bench-secret"}
}

type split struct {
	total, clone, commands, build, push time.Duration
}

func (o *orchestration) one(b *testing.B, i int) split {
	ctx := context.Background()
	body := pushPayload(b, o.w, fmt.Sprintf("refs/tags/b%d", i))
	start := time.Now()
	code, out := o.fx.webhook(o.svcID, "push", fmt.Sprintf("bench-%d", i), body, o.secret)
	if code != http.StatusAccepted {
		b.Fatalf("webhook %d: %v", code, out)
	}
	id := out["version_id"].(string)
	var v *records.Version
	for {
		var err error
		if v, err = o.fx.Store.GetVersion(ctx, id); err != nil {
			b.Fatal(err)
		}
		if records.Terminal(v.Status) {
			break
		}
		time.Sleep(200 * time.Microsecond)
	}
	total := time.Since(start)
	if v.Status != records.StatusSuccess {
		b.Fatalf("version %s: %s", v.Status, v.Error)
	}
	s := split{total: total}
	for _, st := range v.Stages {
		d := st.FinishedAt.Sub(st.StartedAt)
		switch st.Name {
		case records.StageClone:
			s.clone = d
		case records.StagePreBuild:
			s.commands = d
		case records.StageBuild:
			s.build = d
		case records.StagePush:
			s.push = d
		}
	}
	return s
}

func benchOrchestration(b *testing.B, commands int) split {
	o := newOrchestration(b, commands)
	o.one(b, -1) // warm up: first clone, first registry connection
	var sum split
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := o.one(b, i)
		sum.total += s.total
		sum.clone += s.clone
		sum.commands += s.commands
		sum.build += s.build
		sum.push += s.push
	}
	b.StopTimer()
	n := time.Duration(b.N)
	avg := split{sum.total / n, sum.clone / n, sum.commands / n, sum.build / n, sum.push / n}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(avg.total), "total-ms")
	b.ReportMetric(ms(avg.total-avg.clone-avg.commands), "no-clone-cmds-ms")
	b.ReportMetric(ms(avg.total-avg.clone-avg.commands-avg.build-avg.push), "bookkeeping-ms")
	b.ReportMetric(ms(avg.clone), "clone-ms")
	b.ReportMetric(ms(avg.build+avg.push), "build+push-ms")
	b.ReportMetric(ms(avg.commands), "commands-ms")
	return avg
}

// BenchmarkOrchestration: one version of a tiny FROM scratch image with
// a single command step, webhook accepted to image pushed.
func BenchmarkOrchestration(b *testing.B) { benchOrchestration(b, 1) }

// BenchmarkOrchestration21Steps: the same with 21 command steps; compare
// commands-ms with BenchmarkOrchestration's to get the cost of a step.
func BenchmarkOrchestration21Steps(b *testing.B) { benchOrchestration(b, 21) }
