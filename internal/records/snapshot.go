package records

import (
	"context"
	"fmt"
	"io"

	"gocloud.dev/docstore"
)

// Snapshot is every record of a store, for keeping an in-memory docstore on disk.
type Snapshot struct {
	Format       int            `json:"format"`
	Services     []*Service     `json:"services"`
	Versions     []*Version     `json:"versions"`
	Deliveries   []*Delivery    `json:"deliveries"`
	VersionNames []*VersionName `json:"version_names"`
}

// Dump reads every record.
func (s *Store) Dump(ctx context.Context) (*Snapshot, error) {
	snap := &Snapshot{Format: 1}
	var err error
	if snap.Services, err = dumpAll[Service](ctx, s.services); err != nil {
		return nil, err
	}
	if snap.Versions, err = dumpAll[Version](ctx, s.versions); err != nil {
		return nil, err
	}
	if snap.Deliveries, err = dumpAll[Delivery](ctx, s.deliveries); err != nil {
		return nil, err
	}
	if snap.VersionNames, err = dumpAll[VersionName](ctx, s.names); err != nil {
		return nil, err
	}
	return snap, nil
}

func dumpAll[T any](ctx context.Context, c *docstore.Collection) ([]*T, error) {
	var out []*T
	it := c.Query().Get(ctx)
	defer it.Stop()
	for {
		doc := new(T)
		err := it.Next(ctx, doc)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, doc)
	}
}

// Load writes every record of a snapshot into an empty store.
func (s *Store) Load(ctx context.Context, snap *Snapshot) error {
	if snap.Format != 1 {
		return fmt.Errorf("unknown snapshot format %d", snap.Format)
	}
	put := func(c *docstore.Collection, doc any) error {
		return c.Put(ctx, doc)
	}
	for _, d := range snap.Services {
		d.DocstoreRevision = nil
		if err := put(s.services, d); err != nil {
			return err
		}
	}
	for _, d := range snap.Versions {
		d.DocstoreRevision = nil
		if err := put(s.versions, d); err != nil {
			return err
		}
	}
	for _, d := range snap.Deliveries {
		d.DocstoreRevision = nil
		if err := put(s.deliveries, d); err != nil {
			return err
		}
	}
	for _, d := range snap.VersionNames {
		d.DocstoreRevision = nil
		if err := put(s.names, d); err != nil {
			return err
		}
	}
	return nil
}
