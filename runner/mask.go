package runner

import (
	"bytes"
	"io"
	"sync"
)

// masker replaces secrets in what is written with "****" before it reaches
// the log. It works line by line so a secret split across two writes is
// still caught; Close writes out a last partial line.
type masker struct {
	out     io.Writer
	secrets [][]byte
	mu      sync.Mutex
	buf     []byte
}

func newMasker(out io.Writer, secrets ...string) *masker {
	m := &masker{out: out}
	for _, s := range secrets {
		if len(s) >= 4 { // shorter "secrets" would mask ordinary words
			m.secrets = append(m.secrets, []byte(s))
		}
	}
	return m
}

func (m *masker) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.buf = append(m.buf, p...)
	if i := bytes.LastIndexByte(m.buf, '\n'); i >= 0 {
		if _, err := m.out.Write(m.mask(m.buf[:i+1])); err != nil {
			return 0, err
		}
		m.buf = append(m.buf[:0], m.buf[i+1:]...)
	}
	return len(p), nil
}

func (m *masker) mask(b []byte) []byte {
	for _, s := range m.secrets {
		b = bytes.ReplaceAll(b, s, []byte("****"))
	}
	return b
}

// Close writes what is left.
func (m *masker) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.buf) == 0 {
		return nil
	}
	_, err := m.out.Write(m.mask(m.buf))
	m.buf = nil
	return err
}
