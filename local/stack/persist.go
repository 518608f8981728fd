package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/fornax-dev/fornax/internal/records"
)

// persister keeps an in-memory docstore on disk: after changes (coalesced
// over a short delay) and on Close, it writes every record to a temporary
// file and renames it over the old one, so a crash leaves either the old
// or the new snapshot, never half of one.
type persister struct {
	store *records.Store
	path  string
	log   *slog.Logger
	delay time.Duration

	mu      sync.Mutex
	pending bool
	saving  sync.Mutex
	timer   *time.Timer
	closed  bool
}

func loadSnapshot(ctx context.Context, store *records.Store, path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var snap records.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("read %s: %v", path, err)
	}
	return store.Load(ctx, &snap)
}

// changed schedules a save.
func (p *persister) changed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending || p.closed {
		return
	}
	p.pending = true
	p.timer = time.AfterFunc(p.delay, func() {
		p.mu.Lock()
		p.pending = false
		p.mu.Unlock()
		if err := p.save(); err != nil {
			p.log.Error("save docstore", "path", p.path, "err", err)
		}
	})
}

func (p *persister) save() error {
	p.saving.Lock()
	defer p.saving.Unlock()
	snap, err := p.store.Dump(context.Background())
	if err != nil {
		return err
	}
	data, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	return writeFileAtomic(p.path, data, 0o600)
}

// close stops scheduled saves and writes a last snapshot.
func (p *persister) close() error {
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	return p.save()
}
