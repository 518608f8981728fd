package vcs

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

type svnRepo struct {
	url, user, token string
	red              *redactor
}

// svnCommand is the svn client run non-interactively, without caching
// credentials, with its configuration in the temporary HOME and the
// password on stdin.
func (r *svnRepo) svnCommand(s *session, op string, log io.Writer, args ...string) command {
	full := []string{
		"--non-interactive", "--no-auth-cache",
		"--config-dir", filepath.Join(s.home, ".subversion"),
		"--config-option", "config:auth:password-stores=",
	}
	stdin := ""
	if r.user != "" {
		full = append(full, "--username", r.user)
	}
	if r.token != "" {
		full = append(full, "--password-from-stdin")
		stdin = r.token + "\n"
	}
	full = append(full, args...)
	return command{op: op, name: "svn", args: full, stdin: stdin, log: log}
}

func (r *svnRepo) svn(ctx context.Context, s *session, op string, log io.Writer, args ...string) ([]byte, error) {
	return s.run(ctx, r.svnCommand(s, op, log, args...))
}

// target is the URL of path ref under the repository.
func (r *svnRepo) target(ref string) (string, string, error) {
	ref = strings.Trim(strings.TrimSpace(ref), "/")
	if ref == "" || ref == "HEAD" {
		return r.url, "", nil
	}
	for _, seg := range strings.Split(ref, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", "", fmt.Errorf("invalid svn path %q", ref)
		}
	}
	for _, c := range ref {
		if c < 0x20 || c == 0x7f {
			return "", "", fmt.Errorf("invalid svn path %q", ref)
		}
	}
	u, err := url.Parse(r.url)
	if err != nil {
		return "", "", err
	}
	u = u.JoinPath(strings.Split(ref, "/")...)
	return u.String(), path.Clean(ref), nil
}

func (r *svnRepo) check(ctx context.Context) error {
	s, err := newSession(r.red)
	if err != nil {
		return err
	}
	defer s.close()
	_, err = r.svn(ctx, s, "svn info "+r.url, nil, "info", "--", r.url+"@HEAD")
	return err
}

func (r *svnRepo) resolve(ctx context.Context, ref string) (Ref, error) {
	target, name, err := r.target(ref)
	if err != nil {
		return Ref{}, err
	}
	s, err := newSession(r.red)
	if err != nil {
		return Ref{}, err
	}
	defer s.close()
	out, err := r.svn(ctx, s, "svn info "+target, nil,
		"info", "--show-item", "last-changed-revision", "--no-newline", "--", target+"@HEAD")
	if err != nil {
		if strings.Contains(err.Error(), "E170000") || strings.Contains(err.Error(), "E200009") {
			return Ref{}, fmt.Errorf("%w: %v", ErrRefNotFound, err)
		}
		return Ref{}, err
	}
	rev := strings.TrimSpace(string(out))
	if _, err := checkRevision(rev); err != nil {
		return Ref{}, fmt.Errorf("svn info %s: unexpected revision %q", target, rev)
	}
	return Ref{Name: name, SHA: rev}, nil
}

// checkRevision accepts a revision number, with or without a leading "r".
func checkRevision(rev string) (string, error) {
	rev = strings.TrimPrefix(strings.TrimSpace(rev), "r")
	if rev == "" || len(rev) > 19 {
		return "", fmt.Errorf("invalid svn revision %q", rev)
	}
	for _, c := range rev {
		if c < '0' || c > '9' {
			return "", fmt.Errorf("invalid svn revision %q", rev)
		}
	}
	return rev, nil
}

type svnLog struct {
	Entries []struct {
		Revision string `xml:"revision,attr"`
		Author   string `xml:"author"`
		Msg      string `xml:"msg"`
	} `xml:"logentry"`
}

func (r *svnRepo) checkout(ctx context.Context, ref, rev, dir string, log io.Writer) (Commit, error) {
	rev, err := checkRevision(rev)
	if err != nil {
		return Commit{}, err
	}
	target, name, err := r.target(ref)
	if err != nil {
		return Commit{}, err
	}
	dir, err = prepareDir(dir)
	if err != nil {
		return Commit{}, err
	}
	s, err := newSession(r.red)
	if err != nil {
		return Commit{}, err
	}
	defer s.close()

	fmt.Fprintf(log, "$ svn checkout -r %s %s\n", rev, target)
	// Progress goes to stdout for svn: send both streams to the log.
	co := r.svnCommand(s, "svn checkout -r "+rev+" "+target, log,
		"checkout", "--ignore-externals", "-r", rev, "--", target+"@"+rev, dir)
	co.stdoutToLog = true
	if _, err := s.run(ctx, co); err != nil {
		return Commit{}, err
	}

	// The log of the revision: from the repository root, where every
	// revision is listed; else the newest change to the path up to rev.
	root, err := r.svn(ctx, s, "svn info "+dir, nil, "info", "--show-item", "repos-root-url", "--no-newline", "--", dir)
	if err != nil {
		return Commit{}, err
	}
	rootURL := strings.TrimSpace(string(root))
	out, err := r.svn(ctx, s, "svn log -r "+rev+" "+rootURL, nil, "log", "--xml", "-r", rev, "--", rootURL+"@"+rev)
	if err != nil {
		out, err = r.svn(ctx, s, "svn log -r "+rev+" "+target, nil, "log", "--xml", "-l", "1", "-r", rev+":0", "--", target+"@"+rev)
		if err != nil {
			return Commit{}, err
		}
	}
	var l svnLog
	if err := xml.Unmarshal(out, &l); err != nil {
		return Commit{}, fmt.Errorf("svn log -r %s: %v", rev, err)
	}
	c := Commit{SHA: rev, Ref: name}
	if len(l.Entries) > 0 {
		c.Author = l.Entries[0].Author
		c.Message = strings.TrimRight(l.Entries[0].Msg, "\n")
	}
	return c, nil
}
