package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fornax-dev/fornax/internal/auth"
)

func TestParseTokensGood(t *testing.T) {
	tok, err := auth.ParseTokens(" alice=tokenAAAA1 ,bob.smith_2-x=tokenBBBB2,, 9=tokenCCCC3=with=equals,")
	if err != nil {
		t.Fatalf("ParseTokens: %v", err)
	}
	for token, want := range map[string]string{
		"tokenAAAA1":             "alice",
		"tokenBBBB2":             "bob.smith_2-x",
		"tokenCCCC3=with=equals": "9", // only the first '=' splits
	} {
		if got, ok := tok.User(token); !ok || got != want {
			t.Errorf("User(%q) = %q, %v; want %q", token, got, ok, want)
		}
	}
	for _, token := range []string{"", "tokenAAAA", "tokenAAAA1 ", "TOKENAAAA1", "tokenBBBB2x", "alice", "tokenCCCC3"} {
		if got, ok := tok.User(token); ok || got != "" {
			t.Errorf("User(%q) = %q, %v; want rejected", token, got, ok)
		}
	}
	// 64 characters is the longest user name.
	long := strings.Repeat("a", 64)
	if _, err := auth.ParseTokens(long + "=12345678"); err != nil {
		t.Errorf("64-char user rejected: %v", err)
	}
}

func TestParseTokensBad(t *testing.T) {
	for _, spec := range []string{
		"",
		" , ,",
		"alice",              // missing '='
		"alice=",             // empty token
		"alice=1234567",      // 7 characters
		"Alice=12345678",     // upper case
		"a/b=12345678",       // would split an image path
		"=12345678",          // empty user
		"-alice=12345678",    // must start with a letter or digit
		"alice-=12345678",    // must end with one
		"al ice=12345678",    // space inside
		"alice=12345678,bob", // one bad entry spoils the lot
		"alice=12345678,bob=short",
		strings.Repeat("a", 65) + "=12345678",
	} {
		if tok, err := auth.ParseTokens(spec); err == nil {
			t.Errorf("ParseTokens(%q) = %v, want an error", spec, tok)
		}
	}
}

func TestParseTokensErrorsDoNotShowTokens(t *testing.T) {
	// The error of a good user name with a short token names the user only.
	_, err := auth.ParseTokens("alice=s3cr")
	if err == nil || strings.Contains(err.Error(), "s3cr") || !strings.Contains(err.Error(), "alice") {
		t.Errorf("short-token error %v: want it to name alice and not show the token", err)
	}
	_, err = auth.ParseTokens("Alice=s3cr3t-t0ken-value")
	if err == nil || strings.Contains(err.Error(), "s3cr3t-t0ken-value") {
		t.Errorf("bad-user error %v shows the token", err)
	}
}

func TestParseTokensMissingEqualsDoesNotShowToken(t *testing.T) {
	_, err := auth.ParseTokens("alice:s3cr3t-t0ken-value")
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "s3cr3t-t0ken-value") {
		t.Errorf("error %q shows the token", err)
	}
}

func TestParseTokensDuplicateTokenRejected(t *testing.T) {
	tok, err := auth.ParseTokens("alice=sharedtoken1,bob=sharedtoken1")
	if err == nil {
		u, _ := tok.User("sharedtoken1")
		t.Errorf("duplicate token accepted; it now authenticates as %q", u)
	}
}

func TestSameUserSeveralTokens(t *testing.T) {
	tok, err := auth.ParseTokens("alice=oldtoken1,alice=newtoken2")
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{"oldtoken1", "newtoken2"} {
		if u, ok := tok.User(token); !ok || u != "alice" {
			t.Errorf("User(%q) = %q, %v; want alice", token, u, ok)
		}
	}
}

func TestZeroTokensAdd(t *testing.T) {
	var tok auth.Tokens
	if u, ok := tok.User("anything12"); ok || u != "" {
		t.Errorf("empty Tokens accepted a token as %q", u)
	}
	if err := tok.Add("admin", "0123456789abcdef"); err != nil {
		t.Fatal(err)
	}
	if u, ok := tok.User("0123456789abcdef"); !ok || u != "admin" {
		t.Errorf("User after Add = %q, %v", u, ok)
	}
	if err := tok.Add("Admin", "0123456789abcdef"); err == nil {
		t.Error("Add accepted an upper-case user")
	}
	if err := tok.Add("bob", "short"); err == nil {
		t.Error("Add accepted a short token")
	}
	if u, _ := tok.User("short"); u != "" {
		t.Errorf("rejected token registered anyway, as %q", u)
	}
}

func TestMiddleware(t *testing.T) {
	tok, err := auth.ParseTokens("alice=alicetoken1,bob=bobtoken22")
	if err != nil {
		t.Fatal(err)
	}
	var seenUser string
	nextCalls := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nextCalls++
		seenUser = auth.UserFrom(r.Context())
		w.WriteHeader(http.StatusTeapot)
	})
	var unauthorizedMsg string
	unauthorizedCalls := 0
	h := tok.Middleware(next, func(w http.ResponseWriter, msg string) {
		unauthorizedCalls++
		unauthorizedMsg = msg
		http.Error(w, msg, http.StatusUnauthorized)
	})

	do := func(header string, set bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/api/services", nil)
		if set {
			req.Header.Set("Authorization", header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}

	for _, c := range []struct {
		name   string
		header string
		set    bool
	}{
		{"no header", "", false},
		{"empty header", "", true},
		{"basic scheme", "Basic alicetoken1", true},
		{"basic with credentials", "Basic YWxpY2U6YWxpY2V0b2tlbjE=", true},
		{"bearer without token", "Bearer ", true},
		{"bearer only", "Bearer", true},
		{"token without scheme", "alicetoken1", true},
		{"unknown token", "Bearer nottheone1", true},
		{"token prefix", "Bearer alicetoken", true},
		{"token plus extra", "Bearer alicetoken1x", true},
	} {
		seenUser, nextCalls, unauthorizedCalls, unauthorizedMsg = "", 0, 0, ""
		rec := do(c.header, c.set)
		if nextCalls != 0 {
			t.Errorf("%s: next handler ran (user %q)", c.name, seenUser)
		}
		if unauthorizedCalls != 1 || unauthorizedMsg == "" {
			t.Errorf("%s: unauthorized called %d times with %q, want once with a message", c.name, unauthorizedCalls, unauthorizedMsg)
		}
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", c.name, rec.Code)
		}
		if strings.Contains(unauthorizedMsg, "alicetoken1") || strings.Contains(rec.Body.String(), "alicetoken1") {
			t.Errorf("%s: response shows the token: %q", c.name, rec.Body.String())
		}
	}

	for header, want := range map[string]string{
		"Bearer alicetoken1":   "alice",
		"Bearer bobtoken22":    "bob",
		"Bearer  bobtoken22  ": "bob",
	} {
		seenUser, nextCalls, unauthorizedCalls = "", 0, 0
		rec := do(header, true)
		if unauthorizedCalls != 0 {
			t.Errorf("%q: unauthorized called (%q)", header, unauthorizedMsg)
		}
		if nextCalls != 1 || seenUser != want {
			t.Errorf("%q: next ran %d times with user %q, want once with %q", header, nextCalls, seenUser, want)
		}
		if rec.Code != http.StatusTeapot {
			t.Errorf("%q: status %d, want the next handler's", header, rec.Code)
		}
	}
}

func TestUserFrom(t *testing.T) {
	if u := auth.UserFrom(context.Background()); u != "" {
		t.Errorf("UserFrom(empty ctx) = %q", u)
	}
	ctx := auth.WithUser(context.Background(), "carol")
	if u := auth.UserFrom(ctx); u != "carol" {
		t.Errorf("UserFrom = %q, want carol", u)
	}
	// Another package's string value under a look-alike key is not a user.
	type ctxKey struct{}
	ctx = context.WithValue(context.Background(), ctxKey{}, "mallory")
	if u := auth.UserFrom(ctx); u != "" {
		t.Errorf("UserFrom picked up a foreign value %q", u)
	}
}
