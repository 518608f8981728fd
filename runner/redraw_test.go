package runner

import (
	"bytes"
	"testing"
)

// Progress meters redraw a line with carriage returns; the stored log
// keeps what a terminal would show last, and CRLF endings stay lines.
func TestMaskerKeepsLastRedraw(t *testing.T) {
	var buf bytes.Buffer
	m := newMasker(&buf, "secretvalue")
	m.Write([]byte("a 10%\ra 50%\ra 100%, done.\nwin\r\nsecretvalue\r"))
	m.Write([]byte("\npartial"))
	m.Close()
	if want := "a 100%, done.\nwin\n****\npartial"; buf.String() != want {
		t.Fatalf("got %q, want %q", buf.String(), want)
	}
}
