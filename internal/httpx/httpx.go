// Package httpx holds the JSON conventions shared by Fornax's HTTP functions:
// errors are {"error": "..."} with a real status, bodies are bounded.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// MaxBody bounds request bodies.
const MaxBody = 1 << 20

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Error writes {"error": msg} with status.
func Error(w http.ResponseWriter, status int, msg string) {
	JSON(w, status, map[string]string{"error": msg})
}

// Errorf writes a formatted error.
func Errorf(w http.ResponseWriter, status int, format string, args ...any) {
	Error(w, status, fmt.Sprintf(format, args...))
}

// Decode reads a JSON body into v, rejecting unknown fields and bodies
// larger than MaxBody with an error meant for the client.
func Decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("request body is larger than %d bytes", MaxBody)
		}
		if err == io.EOF {
			return fmt.Errorf("request body is empty; expected JSON")
		}
		return fmt.Errorf("request body is not valid JSON: %v", err)
	}
	return nil
}

// ReadBody reads a bounded body.
func ReadBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBody*10))
	if err != nil {
		return nil, fmt.Errorf("read body: %v", err)
	}
	return b, nil
}
