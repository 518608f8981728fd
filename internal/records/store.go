package records

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"gocloud.dev/docstore"
	"gocloud.dev/docstore/memdocstore"
	"gocloud.dev/gcerrors"
)

// Collection names; a docstore URL template's {collection} is replaced by each.
const (
	CollServices     = "services"
	CollVersions     = "versions"
	CollDeliveries   = "deliveries"
	CollVersionNames = "version_names"
)

// Collections lists every collection the store opens.
var Collections = []string{CollServices, CollVersions, CollDeliveries, CollVersionNames}

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists is returned when a record being created exists already.
var ErrExists = errors.New("already exists")

// Store is the set of docstore collections Fornax keeps its records in.
type Store struct {
	services, versions, deliveries, names *docstore.Collection
	// OnChange, when set, is called after every successful write; local
	// mode uses it to save the in-memory docstore to disk.
	OnChange func()
}

// Open opens every collection from a URL template such as
// "mem://fornax_{collection}/id" or "dynamodb://fornax_{collection}?partition_key=id".
func Open(ctx context.Context, template string) (*Store, error) {
	if !strings.Contains(template, "{collection}") {
		return nil, fmt.Errorf("docstore URL %q must contain {collection}", template)
	}
	open := func(name string) (*docstore.Collection, error) {
		c, err := docstore.OpenCollection(ctx, strings.ReplaceAll(template, "{collection}", name))
		if err != nil {
			return nil, fmt.Errorf("open docstore collection %s: %w", name, err)
		}
		return c, nil
	}
	s := &Store{}
	var err error
	if s.services, err = open(CollServices); err != nil {
		return nil, err
	}
	if s.versions, err = open(CollVersions); err != nil {
		return nil, err
	}
	if s.deliveries, err = open(CollDeliveries); err != nil {
		return nil, err
	}
	if s.names, err = open(CollVersionNames); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenMemory opens a store of private in-memory collections. (Opening
// "mem://" URLs would share collections process-wide, by name.)
func OpenMemory() (*Store, error) {
	s := &Store{}
	for _, c := range []**docstore.Collection{&s.services, &s.versions, &s.deliveries, &s.names} {
		coll, err := memdocstore.OpenCollection("id", nil)
		if err != nil {
			return nil, err
		}
		*c = coll
	}
	return s, nil
}

// Close closes every collection.
func (s *Store) Close() error {
	return errors.Join(s.services.Close(), s.versions.Close(), s.deliveries.Close(), s.names.Close())
}

func (s *Store) changed() {
	if s.OnChange != nil {
		s.OnChange()
	}
}

func wrap(err error) error {
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case gcerrors.AlreadyExists:
		return fmt.Errorf("%w: %v", ErrExists, err)
	}
	return err
}

// CreateService stores a new service.
func (s *Store) CreateService(ctx context.Context, svc *Service) error {
	if err := s.services.Create(ctx, svc); err != nil {
		return wrap(err)
	}
	s.changed()
	return nil
}

// GetService returns a service by id.
func (s *Store) GetService(ctx context.Context, id string) (*Service, error) {
	svc := &Service{ID: id}
	if err := s.services.Get(ctx, svc); err != nil {
		return nil, wrap(err)
	}
	return svc, nil
}

// ListServices returns an owner's services sorted by name.
func (s *Store) ListServices(ctx context.Context, owner string) ([]*Service, error) {
	var out []*Service
	it := s.services.Query().Where("owner", "=", owner).Get(ctx)
	defer it.Stop()
	for {
		svc := &Service{}
		err := it.Next(ctx, svc)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, svc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// UpdateService applies fn to the current service and writes it back,
// retrying when another writer got there first.
func (s *Store) UpdateService(ctx context.Context, id string, fn func(*Service) error) (*Service, error) {
	for {
		svc, err := s.GetService(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(svc); err != nil {
			if errors.Is(err, ErrNoChange) {
				return svc, nil
			}
			return nil, err
		}
		err = s.services.Replace(ctx, svc)
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			continue // someone else wrote it; apply fn to the new state
		}
		if err != nil {
			return nil, wrap(err)
		}
		s.changed()
		return svc, nil
	}
}

// DeleteService removes a service record.
func (s *Store) DeleteService(ctx context.Context, id string) error {
	if err := s.services.Delete(ctx, &Service{ID: id}); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return err
	}
	s.changed()
	return nil
}

// CreateVersion stores a new version.
func (s *Store) CreateVersion(ctx context.Context, v *Version) error {
	if err := s.versions.Create(ctx, v); err != nil {
		return wrap(err)
	}
	s.changed()
	return nil
}

// GetVersion returns a version by id.
func (s *Store) GetVersion(ctx context.Context, id string) (*Version, error) {
	v := &Version{ID: id}
	if err := s.versions.Get(ctx, v); err != nil {
		return nil, wrap(err)
	}
	return v, nil
}

// ListVersions returns a service's versions, newest created first.
func (s *Store) ListVersions(ctx context.Context, serviceID string) ([]*Version, error) {
	return s.queryVersions(ctx, s.versions.Query().Where("service_id", "=", serviceID))
}

// VersionsWithStatus returns every version in a status, oldest first.
func (s *Store) VersionsWithStatus(ctx context.Context, status string) ([]*Version, error) {
	out, err := s.queryVersions(ctx, s.versions.Query().Where("status", "=", status))
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

func (s *Store) queryVersions(ctx context.Context, q *docstore.Query) ([]*Version, error) {
	var out []*Version
	it := q.Get(ctx)
	defer it.Stop()
	for {
		v := &Version{}
		err := it.Next(ctx, v)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

// UpdateVersion applies fn to the current version and writes it back,
// guarded by the revision, retrying on a concurrent write. fn returning
// ErrNoChange leaves the record as it is.
func (s *Store) UpdateVersion(ctx context.Context, id string, fn func(*Version) error) (*Version, error) {
	for {
		v, err := s.GetVersion(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(v); err != nil {
			return v, err // ErrNoChange included: callers tell it apart
		}
		err = s.versions.Replace(ctx, v)
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			continue
		}
		if err != nil {
			return nil, wrap(err)
		}
		s.changed()
		return v, nil
	}
}

// DeleteVersion removes a version and its name reservation.
func (s *Store) DeleteVersion(ctx context.Context, v *Version) error {
	err := s.versions.Delete(ctx, &Version{ID: v.ID})
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return err
	}
	err = s.names.Delete(ctx, &VersionName{ID: v.ServiceID + "/" + v.Name})
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return err
	}
	s.changed()
	return nil
}

// ReserveName claims a version name within a service. With exact it fails
// with ErrExists when the name is taken; otherwise a clash gets a suffix
// ("-2", "-3", …) and the name actually reserved is returned.
func (s *Store) ReserveName(ctx context.Context, serviceID, name, versionID string, exact bool) (string, error) {
	candidate := name
	for i := 2; ; i++ {
		err := s.names.Create(ctx, &VersionName{ID: serviceID + "/" + candidate, VersionID: versionID})
		if err == nil {
			s.changed()
			return candidate, nil
		}
		if gcerrors.Code(err) != gcerrors.AlreadyExists {
			return "", err
		}
		if exact {
			return "", fmt.Errorf("%w: version name %q", ErrExists, name)
		}
		suffix := fmt.Sprintf("-%d", i)
		base := name
		if len(base)+len(suffix) > 128 {
			base = base[:128-len(suffix)]
		}
		candidate = base + suffix
	}
}

// ReleaseName frees a name reserved by ReserveName.
func (s *Store) ReleaseName(ctx context.Context, serviceID, name string) error {
	err := s.names.Delete(ctx, &VersionName{ID: serviceID + "/" + name})
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return err
	}
	s.changed()
	return nil
}

// RecordDelivery remembers a webhook delivery; ErrExists means it was seen before.
func (s *Store) RecordDelivery(ctx context.Context, d *Delivery) error {
	if err := s.deliveries.Create(ctx, d); err != nil {
		return wrap(err)
	}
	s.changed()
	return nil
}

// GetDelivery returns a recorded delivery.
func (s *Store) GetDelivery(ctx context.Context, id string) (*Delivery, error) {
	d := &Delivery{ID: id}
	if err := s.deliveries.Get(ctx, d); err != nil {
		return nil, wrap(err)
	}
	return d, nil
}

// SetDeliveryVersion links a delivery to the version it made.
func (s *Store) SetDeliveryVersion(ctx context.Context, id, versionID string) error {
	err := s.deliveries.Actions().Update(&Delivery{ID: id}, docstore.Mods{"version_id": versionID}).Do(ctx)
	if err != nil {
		return wrap(err)
	}
	s.changed()
	return nil
}

// ForgetDelivery removes a delivery record, so that the provider's retry of
// a delivery Fornax failed to handle is accepted.
func (s *Store) ForgetDelivery(ctx context.Context, id string) error {
	err := s.deliveries.Delete(ctx, &Delivery{ID: id})
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return err
	}
	s.changed()
	return nil
}
