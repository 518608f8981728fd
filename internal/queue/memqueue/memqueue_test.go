package memqueue

import (
	"context"
	"testing"
	"time"

	"gocloud.dev/pubsub"
)

func send(t *testing.T, q *Queue, body string) {
	t.Helper()
	if err := q.Topic().Send(context.Background(), &pubsub.Message{Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
}

func receive(t *testing.T, s *pubsub.Subscription, within time.Duration) *pubsub.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	m, err := s.Receive(ctx)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return m
}

func TestFanOutAndAck(t *testing.T) {
	q := New()
	a, b := q.Subscribe(time.Minute), q.Subscribe(time.Minute)
	send(t, q, "one")
	for _, s := range []*pubsub.Subscription{a, b} {
		m := receive(t, s, 5*time.Second)
		if string(m.Body) != "one" {
			t.Fatalf("got %q", m.Body)
		}
		m.Ack()
	}
	// Acked: nothing more arrives.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if m, err := a.Receive(ctx); err == nil {
		t.Fatalf("acked message delivered again: %q", m.Body)
	}
}

func TestNackRedelivers(t *testing.T) {
	q := New()
	s := q.Subscribe(time.Minute)
	send(t, q, "job")
	m := receive(t, s, 5*time.Second)
	m.Nack()
	m2 := receive(t, s, 5*time.Second)
	if string(m2.Body) != "job" {
		t.Fatalf("got %q after nack", m2.Body)
	}
	m2.Ack()
}

func TestAckDeadlineRedelivers(t *testing.T) {
	q := New()
	s := q.Subscribe(200 * time.Millisecond)
	send(t, q, "slow")
	m := receive(t, s, 5*time.Second)
	_ = m // neither acked nor nacked: the worker died
	m2 := receive(t, s, 5*time.Second)
	if string(m2.Body) != "slow" {
		t.Fatalf("got %q", m2.Body)
	}
	m2.Ack()
}

func TestOrderKept(t *testing.T) {
	q := New()
	s := q.Subscribe(time.Minute)
	for _, b := range []string{"1", "2", "3"} {
		send(t, q, b)
	}
	for _, want := range []string{"1", "2", "3"} {
		m := receive(t, s, 5*time.Second)
		if string(m.Body) != want {
			t.Fatalf("got %q, want %q", m.Body, want)
		}
		m.Ack()
	}
}

// BenchmarkSendReceive measures one hop: send, a waiting receiver wakes,
// ack. mempubsub's idle poll makes this ~125 ms on average.
func BenchmarkSendReceive(b *testing.B) {
	q := New()
	s := q.Subscribe(time.Minute)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if err := q.Topic().Send(ctx, &pubsub.Message{Body: []byte("x")}); err != nil {
			b.Fatal(err)
		}
		m, err := s.Receive(ctx)
		if err != nil {
			b.Fatal(err)
		}
		m.Ack()
	}
}
