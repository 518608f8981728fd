package runner

import (
	"bytes"
	"io"
	"sort"
	"sync"
)

// masker replaces secrets in what is written with "****" before it reaches
// the log. It works line by line so a secret split across two writes is
// still caught; Close writes out a last partial line. It also keeps of a
// line redrawn with carriage returns (progress meters) only what a
// terminal would show last, so stored logs stay readable.
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
	// Longest first: a secret that contains another must go whole.
	sort.Slice(m.secrets, func(i, j int) bool { return len(m.secrets[i]) > len(m.secrets[j]) })
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
	if bytes.IndexByte(b, '\r') >= 0 {
		b = lastRedraw(b)
	}
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

// lastRedraw keeps, of each line, the text after its last carriage return
// (a CRLF line ending is not a redraw).
func lastRedraw(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		line, rest, found := bytes.Cut(b, []byte{'\n'})
		body := bytes.TrimSuffix(line, []byte{'\r'})
		if i := bytes.LastIndexByte(body, '\r'); i >= 0 {
			body = body[i+1:]
		}
		out = append(out, body...)
		if found {
			out = append(out, '\n')
		}
		b = rest
	}
	return out
}
