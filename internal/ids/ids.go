// Package ids makes record identifiers and secrets from crypto/rand.
package ids

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"strings"
)

var enc = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// New returns prefix_ followed by 16 random characters, e.g. "svc_0f3k…".
func New(prefix string) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux; a broken one is unrecoverable
	}
	return prefix + "_" + strings.ToLower(enc.EncodeToString(b[:]))
}

// Secret returns n random bytes as hex, for tokens and webhook secrets.
func Secret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
