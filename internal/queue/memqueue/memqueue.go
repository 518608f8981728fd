// Package memqueue is an in-process Go Cloud pubsub driver for local mode.
//
// gocloud's mempubsub polls an idle subscription every 250 ms, which would
// add a quarter of a second to every hop of a build. Here a send wakes
// waiting receivers at once. Semantics match a real queue: every
// subscription gets every message sent after it was made, a message not
// acked within the ack deadline is delivered again, and a nack redelivers
// at once. Nothing survives the process: that is the caller's business.
package memqueue

import (
	"context"
	"errors"
	"sync"
	"time"

	"gocloud.dev/gcerrors"
	"gocloud.dev/pubsub"
	"gocloud.dev/pubsub/batcher"
	"gocloud.dev/pubsub/driver"
)

// Queue is one topic and its subscriptions.
type Queue struct {
	mu     sync.Mutex
	subs   []*subscription
	closed bool
	topic  *pubsub.Topic
}

// ErrClosed is returned after the topic or subscription was shut down.
var ErrClosed = errors.New("memqueue: closed")

// New makes a topic.
func New() *Queue {
	q := &Queue{}
	q.topic = pubsub.NewTopic(&topic{q: q}, &batcher.Options{MaxHandlers: 8, MaxBatchSize: 64})
	return q
}

// Topic returns the portable topic that sends to every subscription.
func (q *Queue) Topic() *pubsub.Topic { return q.topic }

// Subscribe makes a subscription that receives what is sent from now on.
func (q *Queue) Subscribe(ackDeadline time.Duration) *pubsub.Subscription {
	s := &subscription{ackDeadline: ackDeadline, wake: make(chan struct{})}
	q.mu.Lock()
	q.subs = append(q.subs, s)
	q.mu.Unlock()
	return pubsub.NewSubscription(s,
		&batcher.Options{MaxHandlers: 4, MaxBatchSize: 64},
		&batcher.Options{MaxHandlers: 2, MaxBatchSize: 256})
}

type topic struct{ q *Queue }

func (t *topic) SendBatch(_ context.Context, ms []*driver.Message) error {
	t.q.mu.Lock()
	if t.q.closed {
		t.q.mu.Unlock()
		return ErrClosed
	}
	subs := append([]*subscription(nil), t.q.subs...)
	t.q.mu.Unlock()
	for _, m := range ms {
		if m.BeforeSend != nil {
			if err := m.BeforeSend(func(any) bool { return false }); err != nil {
				return err
			}
		}
	}
	for _, s := range subs {
		s.add(ms)
	}
	for _, m := range ms {
		if m.AfterSend != nil {
			if err := m.AfterSend(func(any) bool { return false }); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *topic) IsRetryable(error) bool { return false }
func (t *topic) As(any) bool            { return false }
func (t *topic) ErrorAs(error, any) bool {
	return false
}
func (t *topic) ErrorCode(err error) gcerrors.ErrorCode {
	if errors.Is(err, ErrClosed) {
		return gcerrors.FailedPrecondition
	}
	return gcerrors.Unknown
}
func (t *topic) Close() error {
	t.q.mu.Lock()
	t.q.closed = true
	t.q.mu.Unlock()
	return nil
}

type entry struct {
	id    uint64
	body  []byte
	meta  map[string]string
	ready time.Time // not deliverable before
}

type subscription struct {
	ackDeadline time.Duration

	mu      sync.Mutex
	next    uint64
	pending []*entry // in send order
	wake    chan struct{}
	closed  bool
}

func (s *subscription) add(ms []*driver.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for _, m := range ms {
		s.next++
		body := append([]byte(nil), m.Body...)
		var meta map[string]string
		if m.Metadata != nil {
			meta = make(map[string]string, len(m.Metadata))
			for k, v := range m.Metadata {
				meta[k] = v
			}
		}
		s.pending = append(s.pending, &entry{id: s.next, body: body, meta: meta})
	}
	s.broadcast()
}

// broadcast wakes every waiting receiver; the caller holds s.mu.
func (s *subscription) broadcast() {
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *subscription) ReceiveBatch(ctx context.Context, max int) ([]*driver.Message, error) {
	limit := time.NewTimer(time.Second)
	defer limit.Stop()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		now := time.Now()
		var out []*driver.Message
		var soonest time.Time
		for _, e := range s.pending {
			if len(out) == max {
				break
			}
			if e.ready.After(now) {
				if soonest.IsZero() || e.ready.Before(soonest) {
					soonest = e.ready
				}
				continue
			}
			e.ready = now.Add(s.ackDeadline) // in flight until acked or expired
			out = append(out, &driver.Message{
				LoggableID: "",
				Body:       e.body,
				Metadata:   e.meta,
				AckID:      e.id,
				AsFunc:     func(any) bool { return false },
			})
		}
		wake := s.wake
		s.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		var expiry <-chan time.Time
		var t *time.Timer
		if !soonest.IsZero() {
			t = time.NewTimer(time.Until(soonest))
			expiry = t.C
		}
		select {
		case <-wake:
		case <-expiry:
		case <-limit.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if t != nil {
			t.Stop()
		}
	}
}

func (s *subscription) SendAcks(_ context.Context, ids []driver.AckID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	drop := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		drop[id.(uint64)] = true
	}
	kept := s.pending[:0]
	for _, e := range s.pending {
		if !drop[e.id] {
			kept = append(kept, e)
		}
	}
	for i := len(kept); i < len(s.pending); i++ {
		s.pending[i] = nil
	}
	s.pending = kept
	return nil
}

func (s *subscription) CanNack() bool { return true }

func (s *subscription) SendNacks(_ context.Context, ids []driver.AckID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	again := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		again[id.(uint64)] = true
	}
	for _, e := range s.pending {
		if again[e.id] {
			e.ready = time.Time{}
		}
	}
	s.broadcast()
	return nil
}

func (s *subscription) IsRetryable(error) bool  { return false }
func (s *subscription) As(any) bool             { return false }
func (s *subscription) ErrorAs(error, any) bool { return false }
func (s *subscription) ErrorCode(err error) gcerrors.ErrorCode {
	if errors.Is(err, ErrClosed) {
		return gcerrors.FailedPrecondition
	}
	return gcerrors.Unknown
}
func (s *subscription) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.broadcast()
	return nil
}
