// Package stack wires every Fornax function into one process for local
// mode: the api, onpush and build functions and the runner, an in-process
// queue, a docstore kept in a file, blobs on disk, and an embedded OCI
// registry. `go run ./local` calls it; tests start the same wiring.
//
// It is wiring only: no domain logic lives here.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// blobs
	_ "gocloud.dev/blob/memblob"  // mem:// blobs
	"gocloud.dev/pubsub"
	"gocloud.dev/secrets"
	"gocloud.dev/secrets/localsecrets"

	"github.com/fornax-dev/fornax/functions/api"
	"github.com/fornax-dev/fornax/functions/build"
	"github.com/fornax-dev/fornax/functions/onpush"
	"github.com/fornax-dev/fornax/internal/auth"
	"github.com/fornax-dev/fornax/internal/executor/process"
	"github.com/fornax-dev/fornax/internal/forge"
	"github.com/fornax-dev/fornax/internal/forge/github"
	"github.com/fornax-dev/fornax/internal/ids"
	"github.com/fornax-dev/fornax/internal/imagebuild"
	"github.com/fornax-dev/fornax/internal/messages"
	"github.com/fornax-dev/fornax/internal/queue/memqueue"
	"github.com/fornax-dev/fornax/internal/records"
	"github.com/fornax-dev/fornax/internal/registry"
	"github.com/fornax-dev/fornax/internal/trigger"
	"github.com/fornax-dev/fornax/internal/vcs"
	"github.com/fornax-dev/fornax/runner"
)

// Stack is Fornax running in this process.
type Stack struct {
	Config Config
	// URL is where the API and webhooks answer, e.g. http://127.0.0.1:7099.
	URL string
	// Registry is the embedded registry's host:port.
	Registry string
	// AdminToken is set when local mode made (or reused) the admin's token.
	AdminToken string
	// NewAdminToken is true when the admin token was made by this start.
	NewAdminToken bool
	// Handler serves the API and webhooks.
	Handler http.Handler

	Store    *records.Store
	Build    *build.Function
	Executor *process.Executor

	log      *slog.Logger
	reg      *registry.Registry
	server   *http.Server
	persist  *persister
	bucket   *blob.Bucket
	keeper   *secrets.Keeper
	topics   []*pubsub.Topic
	subs     []*pubsub.Subscription
	cancel   context.CancelFunc
	loops    sync.WaitGroup
	builds   *pubsub.Topic
	events   *pubsub.Topic
	closeErr error
	once     sync.Once
}

// Start starts Fornax. The caller must Close it.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (_ *Stack, err error) {
	if log == nil {
		log = slog.Default()
	}
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	s := &Stack{Config: cfg, log: log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}

	if s.keeper, err = openKeeper(ctx, cfg); err != nil {
		return nil, err
	}
	tokens, err := s.openTokens(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.openStore(ctx, cfg); err != nil {
		return nil, err
	}
	if s.bucket, err = blob.OpenBucket(ctx, cfg.BlobURL); err != nil {
		return nil, fmt.Errorf("open blob bucket %s: %w", cfg.BlobURL, err)
	}
	buildSub, eventSub, err := s.openQueues(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if s.reg, err = registry.Start(ctx, cfg.RegistryAddr, filepath.Join(cfg.DataDir, "registry")); err != nil {
		return nil, fmt.Errorf("embedded registry: %w", err)
	}
	s.Registry = s.reg.Addr()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on FORNAX_ADDR %s: %w", cfg.Addr, err)
	}
	s.URL = "http://" + ln.Addr().String()
	public := cfg.PublicURL
	if public == "" {
		public = s.URL
	}

	s.Executor = &process.Executor{
		WorkRoot: filepath.Join(cfg.DataDir, "work"),
		Runner: func(ctx context.Context, job messages.RunnerJob, sec messages.RunnerSecrets, ws string) error {
			return runner.Run(ctx, runner.Deps{
				Events:   runner.TopicEvents{Topic: s.events},
				Logs:     s.bucket,
				Builder:  &imagebuild.Daemonless{},
				Executor: "process",
			}, job, sec, ws)
		},
	}
	// Workspaces of runs that a previous process left behind are garbage.
	_ = os.RemoveAll(s.Executor.WorkRoot)

	trig := &trigger.Trigger{Store: s.Store, Builds: s.builds, Now: time.Now}
	s.Build = build.New(build.Deps{
		Store: s.Store, Keeper: s.keeper, Executor: s.Executor, Logs: s.bucket,
		Registry: s.Registry, Timeout: cfg.BuildTimeout, Log: log,
	})
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api.New(api.Deps{
		Store: s.Store, Keeper: s.keeper, Trigger: trig, Events: s.events, Logs: s.bucket,
		Tokens: tokens, Repos: repoProber{}, PublicURL: public, Log: log,
	}))
	mux.Handle("/webhooks/", onpush.New(onpush.Deps{
		Store: s.Store, Keeper: s.keeper, Trigger: trig,
		Forges: map[string]forge.Forge{"github": github.Forge{}}, Log: log,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Fornax local\nAPI: %s/api/v1/services (Authorization: Bearer <token>)\nRegistry: %s\n", public, s.Registry)
	})
	s.Handler = mux

	loopCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.recover(ctx); err != nil {
		return nil, err
	}
	s.loops.Add(3)
	go s.buildLoop(loopCtx, buildSub, cfg.MaxBuilds)
	go s.eventLoop(loopCtx, eventSub)
	go s.sweepLoop(loopCtx)

	s.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	return s, nil
}

func openKeeper(ctx context.Context, cfg Config) (*secrets.Keeper, error) {
	if cfg.SecretsURL != "" {
		k, err := secrets.OpenKeeper(ctx, cfg.SecretsURL)
		if err != nil {
			return nil, fmt.Errorf("open secrets keeper (FORNAX_SECRETS_URL): %w", err)
		}
		return k, nil
	}
	// Local mode keeps its key beside the data it protects; anyone who can
	// read the data directory can read the secrets, as on any laptop.
	path := filepath.Join(cfg.DataDir, "secrets.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err := localsecrets.NewRandomKey()
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(path, key[:], 0o600); err != nil {
			return nil, fmt.Errorf("save secrets key: %w", err)
		}
		return localsecrets.NewKeeper(key), nil
	}
	if err != nil {
		return nil, err
	}
	if len(b) != 32 {
		return nil, fmt.Errorf("%s: want a 32-byte key, found %d bytes", path, len(b))
	}
	var key [32]byte
	copy(key[:], b)
	return localsecrets.NewKeeper(key), nil
}

func (s *Stack) openTokens(cfg Config) (*auth.Tokens, error) {
	if cfg.APITokens != "" {
		return auth.ParseTokens(cfg.APITokens)
	}
	path := filepath.Join(cfg.DataDir, "admin.token")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		token := ids.Secret(24)
		if err := writeFileAtomic(path, []byte(token+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("save admin token: %w", err)
		}
		b, s.NewAdminToken = []byte(token), true
	} else if err != nil {
		return nil, err
	}
	s.AdminToken = strings.TrimSpace(string(b))
	t := &auth.Tokens{}
	if err := t.Add("admin", s.AdminToken); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func (s *Stack) openStore(ctx context.Context, cfg Config) error {
	var err error
	if cfg.DocstoreURL != "mem://" {
		s.Store, err = records.Open(ctx, cfg.DocstoreURL)
		return err
	}
	if s.Store, err = records.OpenMemory(); err != nil {
		return err
	}
	path := filepath.Join(cfg.DataDir, "docstore.json")
	if err := loadSnapshot(ctx, s.Store, path); err != nil {
		return fmt.Errorf("load records: %w", err)
	}
	s.persist = &persister{store: s.Store, path: path, log: s.log, delay: 20 * time.Millisecond}
	s.Store.OnChange = s.persist.changed
	return nil
}

// openQueues opens the builds and events topics and subscribes to them
// before anything can send, so nothing is dropped.
func (s *Stack) openQueues(ctx context.Context, cfg Config) (builds, events *pubsub.Subscription, err error) {
	if cfg.PubsubURL == "mem://" {
		bq, eq := memqueue.New(), memqueue.New()
		s.builds, s.events = bq.Topic(), eq.Topic()
		builds, events = bq.Subscribe(time.Minute), eq.Subscribe(time.Minute)
		s.topics = append(s.topics, s.builds, s.events)
		s.subs = append(s.subs, builds, events)
		return builds, events, nil
	}
	open := func(name string) (*pubsub.Topic, *pubsub.Subscription, error) {
		turl := strings.ReplaceAll(cfg.PubsubURL, "{topic}", name)
		surl := strings.ReplaceAll(cfg.SubscriptionURL, "{topic}", name)
		t, err := pubsub.OpenTopic(ctx, turl)
		if err != nil {
			return nil, nil, fmt.Errorf("open topic %s: %w", turl, err)
		}
		s.topics = append(s.topics, t)
		sub, err := pubsub.OpenSubscription(ctx, surl)
		if err != nil {
			return nil, nil, fmt.Errorf("open subscription %s: %w", surl, err)
		}
		s.subs = append(s.subs, sub)
		return t, sub, nil
	}
	if !strings.Contains(cfg.PubsubURL, "{topic}") {
		return nil, nil, fmt.Errorf("FORNAX_PUBSUB_URL %q must be mem:// or contain {topic}", cfg.PubsubURL)
	}
	if s.builds, builds, err = open(messages.TopicBuilds); err != nil {
		return nil, nil, err
	}
	if s.events, events, err = open(messages.TopicEvents); err != nil {
		return nil, nil, err
	}
	return builds, events, nil
}

// recover settles versions a previous process left unfinished: the local
// queues lived in its memory, so queued versions are queued again, and
// running ones, whose runners died with it, are failed with the reason.
func (s *Stack) recover(ctx context.Context) error {
	running, err := s.Store.VersionsWithStatus(ctx, records.StatusRunning)
	if err != nil {
		return err
	}
	for _, v := range running {
		_, err := s.Store.UpdateVersion(ctx, v.ID, func(v *records.Version) error {
			return trigger.Fail(v, "Fornax stopped while this version was running; start it again", time.Now().UTC())
		})
		if err != nil && !errors.Is(err, records.ErrNoChange) {
			return err
		}
	}
	queued, err := s.Store.VersionsWithStatus(ctx, records.StatusQueued)
	if err != nil {
		return err
	}
	for _, v := range queued {
		if err := trigger.Enqueue(ctx, s.builds, v); err != nil {
			return fmt.Errorf("queue version %s again: %w", v.ID, err)
		}
	}
	if len(running)+len(queued) > 0 {
		s.log.Info("recovered unfinished versions", "failed", len(running), "queued_again", len(queued))
	}
	return nil
}

// buildLoop takes build jobs while fewer than max runs are under way;
// the rest wait in the queue.
func (s *Stack) buildLoop(ctx context.Context, sub *pubsub.Subscription, max int) {
	defer s.loops.Done()
	slots := make(chan struct{}, max)
	var runs sync.WaitGroup
	defer runs.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		msg, err := sub.Receive(ctx)
		if err != nil {
			<-slots
			if ctx.Err() != nil {
				return
			}
			s.log.Error("receive build job", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		run, err := s.Build.HandleJob(ctx, msg.Body)
		if err != nil {
			<-slots
			s.log.Error("build job", "err", err)
			if msg.Nackable() {
				msg.Nack()
			}
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		msg.Ack()
		if run == nil {
			<-slots
			continue
		}
		runs.Add(1)
		go func() {
			defer runs.Done()
			<-run.Done()
			<-slots
		}()
	}
}

func (s *Stack) eventLoop(ctx context.Context, sub *pubsub.Subscription) {
	defer s.loops.Done()
	for {
		msg, err := sub.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("receive event", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if err := s.Build.HandleEvent(ctx, msg.Body); err != nil {
			s.log.Error("apply event", "err", err)
			if msg.Nackable() {
				msg.Nack()
			}
			continue
		}
		msg.Ack()
	}
}

func (s *Stack) sweepLoop(ctx context.Context) {
	defer s.loops.Done()
	t := time.NewTicker(15 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Build.Sweep(ctx); err != nil {
				s.log.Error("sweep overdue versions", "err", err)
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// Close stops Fornax: it stops taking requests and messages, stops the
// runs under way (their versions are failed with a reason at the next
// start), saves the records and closes every backend.
func (s *Stack) Close() error {
	s.once.Do(func() {
		var errs []error
		if s.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, s.server.Shutdown(ctx))
			cancel()
		}
		if s.cancel != nil {
			s.cancel()
		}
		if s.Executor != nil {
			s.Executor.CancelAll()
		}
		s.loops.Wait()
		for _, sub := range s.subs {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, sub.Shutdown(ctx))
			cancel()
		}
		for _, t := range s.topics {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, t.Shutdown(ctx))
			cancel()
		}
		if s.persist != nil {
			errs = append(errs, s.persist.close())
		}
		if s.Store != nil {
			errs = append(errs, s.Store.Close())
		}
		if s.bucket != nil {
			errs = append(errs, s.bucket.Close())
		}
		if s.reg != nil {
			errs = append(errs, s.reg.Close())
		}
		if s.keeper != nil {
			errs = append(errs, s.keeper.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// writeFileAtomic replaces path with data through a temporary file and a
// rename, so readers and crashes see the old content or the new, never half.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	// On disk before the rename, so a crash leaves the old file or the new one.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// repoProber reaches repositories with the git and svn clients.
type repoProber struct{}

func (repoProber) Check(ctx context.Context, r vcs.Repo) (vcs.Status, string) {
	return vcs.Check(ctx, r)
}

func (repoProber) Resolve(ctx context.Context, r vcs.Repo, ref string) (vcs.Ref, error) {
	return vcs.Resolve(ctx, r, ref)
}
