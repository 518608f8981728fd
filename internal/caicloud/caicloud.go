// Package caicloud reads caicloud.yml, the pipeline file that tells Fornax how
// to test a repository and turn a push into a container image.
//
// The format is the one Cyclone (and earlier Fornax) users already keep in
// their repositories, so their files work unchanged:
//
//	integration:          # tests, optionally with service containers
//	  image: golang:1.22
//	  environment:        # a list of K=V strings or a mapping K: V
//	    - CGO_ENABLED=0
//	  commands:
//	    - go test ./...
//	  services:
//	    mongo:
//	      image: mongo:7
//	      command: mongod --quiet
//	pre_build:            # produce the files the Docker build needs
//	  image: golang:1.22
//	  commands:
//	    - go build -o bin/app ./cmd/app
//	  outputs:
//	    - bin/app
//	build:                # the Docker build itself
//	  dockerfile_path: deploy
//	  dockerfile_name: Dockerfile.release
//	  context_dir: .
//	post_build:           # runs after the image is built
//	  image: alpine
//	  commands: echo done
//	deploy:               # where the new image goes
//	  - application: api
//	    cluster: prod
//	    partition: default
//	    containers: [api]
//
// Parse walks the yaml.v3 node tree itself, so that every error and every
// warning carries the line and column it is about. Keys Fornax does not know,
// such as the Docker options Cyclone files carry (volumes, links, ports,
// privileged, cpus, ...), are reported as warnings and otherwise ignored;
// wrong types, malformed environment entries and missing required values are
// errors.
package caicloud

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// FileName is the name of the pipeline file in the repository root. It
// prefixes the text of every Error and Warning.
const FileName = "caicloud.yml"

// Stage names, as they appear in the file and in Stage.Name.
const (
	StageIntegration = "integration"
	StagePreBuild    = "pre_build"
	StagePostBuild   = "post_build"
)

// DefaultDockerfileName is the Dockerfile name used when build.dockerfile_name
// is not set.
const DefaultDockerfileName = "Dockerfile"

// Config is a parsed caicloud.yml.
type Config struct {
	Integration *Stage // nil when absent
	PreBuild    *Stage // nil when absent
	Build       Build  // zero value = root Dockerfile, context "."
	PostBuild   *Stage // nil when absent
	Deploy      []DeployTarget
}

// Stage is one of the container stages: integration, pre_build or post_build.
type Stage struct {
	Name        string    // "integration", "pre_build", "post_build"
	Image       string    // container image the commands run in
	Environment []string  // "K=V", in file order
	Commands    []string  // shell commands, in file order
	Services    []Service // integration only, in file order
	Outputs     []string  // pre_build only: paths to hand to the build
}

// Service is a container started next to the integration stage (a database,
// a message queue, ...). Its Name is the host name the stage reaches it by.
type Service struct {
	Name        string
	Image       string
	Environment []string // "K=V", in file order
	// Command overrides the image's command. A string in the file is split
	// into words the way a POSIX shell would (quotes and backslashes, no
	// expansion); a list is taken as is.
	Command []string
}

// Build says where the Dockerfile and the build context are. All paths are
// relative to the repository root.
type Build struct {
	DockerfileName string // file name, default "Dockerfile"
	DockerfilePath string // directory holding the Dockerfile (Cyclone meaning)
	ContextDir     string // build context, default "."
}

// DeployTarget is one entry of the deploy list.
type DeployTarget struct {
	Type        string   // optional, e.g. "kubernetes"
	Application string   // "application", alias "deployment"
	Cluster     string   // required
	Partition   string   // "partition", alias "namespace"
	Containers  []string // containers whose image is replaced
}

// Warning is a problem that does not stop parsing, such as an unknown key.
type Warning struct {
	Line, Column int // 1-based; 0 when unknown
	Message      string
}

// String formats the warning as "caicloud.yml:LINE:COL: MESSAGE".
func (w Warning) String() string {
	return position(w.Line, w.Column) + w.Message
}

// Error is a problem that makes the file unusable.
type Error struct {
	Line, Column int // 1-based; 0 when unknown
	Reason       string
}

// Error formats the error as "caicloud.yml:LINE:COL: REASON".
func (e *Error) Error() string {
	return position(e.Line, e.Column) + e.Reason
}

func position(line, col int) string {
	switch {
	case line > 0 && col > 0:
		return fmt.Sprintf("%s:%d:%d: ", FileName, line, col)
	case line > 0:
		return fmt.Sprintf("%s:%d: ", FileName, line)
	default:
		return FileName + ": "
	}
}

// Parse parses the contents of a caicloud.yml file. An empty file, or one with
// only comments, is a valid empty Config. On error the Config is nil, the
// error is an *Error, and the warnings found before the error are returned.
func Parse(data []byte) (*Config, []Warning, error) {
	p := &parser{}
	cfg, err := p.parse(data)
	warnings := p.sortedWarnings()
	if err != nil {
		return nil, warnings, err
	}
	return cfg, warnings, nil
}

type parser struct {
	warnings []Warning
	seenWarn map[Warning]bool
}

func (p *parser) warn(n *yaml.Node, format string, args ...any) {
	w := Warning{Line: n.Line, Column: n.Column, Message: fmt.Sprintf(format, args...)}
	if p.seenWarn == nil {
		p.seenWarn = make(map[Warning]bool)
	}
	// A mapping merged in several places ("<<: *base") would otherwise
	// report the same key several times.
	if p.seenWarn[w] {
		return
	}
	p.seenWarn[w] = true
	p.warnings = append(p.warnings, w)
}

func (p *parser) sortedWarnings() []Warning {
	sort.SliceStable(p.warnings, func(i, j int) bool {
		a, b := p.warnings[i], p.warnings[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return p.warnings
}

// errorAt builds an *Error located at n.
func errorAt(n *yaml.Node, format string, args ...any) *Error {
	e := &Error{Reason: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

func (p *parser) parse(data []byte) (*Config, error) {
	doc, err := decode(data)
	if err != nil {
		return nil, err
	}
	cfg := &Config{}
	if doc == nil || len(doc.Content) == 0 {
		return cfg, nil
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return cfg, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, errorAt(root, "expected a mapping at the top level, got %s", describe(root))
	}
	entries, err := p.entries(root, "")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		switch e.name {
		case StageIntegration:
			cfg.Integration, err = p.stage(StageIntegration, e.value)
		case StagePreBuild:
			cfg.PreBuild, err = p.stage(StagePreBuild, e.value)
		case StagePostBuild:
			cfg.PostBuild, err = p.stage(StagePostBuild, e.value)
		case "build":
			cfg.Build, err = p.build(e.value)
		case "deploy":
			cfg.Deploy, err = p.deploy(e.value)
		default:
			p.warn(e.key, "unknown key %q at top level (ignored)", e.name)
		}
		if err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decode parses data into a document node; nil means an empty stream.
func decode(data []byte) (doc *yaml.Node, err error) {
	defer func() {
		// yaml.v3 has panicked on malformed input in the past; a broken
		// pipeline file must never take the server down.
		if r := recover(); r != nil {
			doc, err = nil, &Error{Reason: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(data, err)
	default:
		at := &extra
		if len(extra.Content) > 0 {
			at = extra.Content[0]
		}
		return nil, errorAt(at, "found a second YAML document; %s must hold exactly one", FileName)
	}
	return &n, nil
}

// yamlError turns a yaml.v3 syntax error into an *Error. yaml.v3 reports the
// line but not the column; for the errors it reports without a line (bad
// encoding, control characters) the position is found here.
func yamlError(data []byte, err error) *Error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if parserProblems[m[2]] {
			// yaml.v3 reports the parser's 0-based line for these.
			line = min(line+1, lineCount(data))
		}
		return &Error{Line: line, Reason: "invalid YAML: " + m[2]}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	e := &Error{Reason: "invalid YAML: " + msg}
	if m := anchorRE.FindStringSubmatch(msg); m != nil {
		// "unknown anchor 'x' referenced", "anchor 'x' value contains itself"
		sigil := "&"
		if strings.HasPrefix(msg, "unknown") {
			sigil = "*"
		}
		e.Line, e.Column = textPosition(data, sigil+m[1])
		return e
	}
	if e.Line, e.Column = badCharPosition(data); e.Line > 0 {
		return e
	}
	if !strings.Contains(msg, "max depth") && !strings.Contains(msg, "internal error") {
		// yaml.v3 leaves out the line number when the problem is on the
		// first line (its lines are 0-based internally).
		e.Line = 1
	}
	return e
}

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner) errors.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found undefined tag handle":             true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// lineCount returns the number of lines in data (at least 1).
func lineCount(data []byte) int {
	n := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		n++
	}
	return max(n, 1)
}

var anchorRE = regexp.MustCompile(`anchor '([^']*)'`)

// textPosition returns the position of the first occurrence of s in data, or
// 0, 0.
func textPosition(data []byte, s string) (line, col int) {
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		return 0, 0
	}
	before := data[:i]
	line = bytes.Count(before, []byte("\n")) + 1
	col = utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return line, col
}

// badCharPosition returns the position of the first byte sequence that YAML
// does not allow (invalid UTF-8 or a control character), or 0, 0.
func badCharPosition(data []byte) (line, col int) {
	line, col = 1, 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size <= 1 {
			return line, col
		}
		if !yamlPrintable(r) && !(line == 1 && col == 1 && r == '\uFEFF') {
			return line, col
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		data = data[size:]
	}
	return 0, 0
}

func yamlPrintable(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return true
	case r >= 0x20 && r <= 0x7E:
		return true
	case r == 0x85:
		return true
	case r >= 0xA0 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD && r != 0xFEFF:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// resolve follows aliases ("*name") to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names the kind of a node for error messages: "a mapping",
// "a list", "a string", "a number", "a boolean", "null".
func describe(n *yaml.Node) string {
	n = resolve(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!timestamp":
		return "a timestamp"
	}
	return "a scalar"
}

// entry is one key of a mapping, after merge keys have been applied.
type entry struct {
	name       string
	key, value *yaml.Node // value is resolved
}

// entries lists the keys of mapping m in file order. Duplicate keys are an
// error; YAML merge keys ("<<: *base") are expanded in place, explicit keys
// winning over merged ones. where names m in messages ("" for the top level).
func (p *parser) entries(m *yaml.Node, where string) ([]entry, error) {
	return p.mergeEntries(m, where, make(map[*yaml.Node]bool))
}

func (p *parser) mergeEntries(m *yaml.Node, where string, visited map[*yaml.Node]bool) ([]entry, error) {
	// Each mapping is expanded once: this keeps "<<" chains linear
	// (no billion laughs), and a mapping merged a second time would add
	// nothing anyway since the earlier occurrence wins.
	if visited[m] {
		return nil, nil
	}
	visited[m] = true

	type pair struct{ key, value *yaml.Node }
	var pairs []pair
	explicit := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), m.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			return nil, errorAt(k, "%skeys must be strings, got %s", prefix(where), describe(k))
		}
		pairs = append(pairs, pair{k, v})
		if isMergeKey(k) {
			continue
		}
		if first, dup := explicit[k.Value]; dup {
			return nil, errorAt(k, "%sduplicate key %q (first defined at line %d)", prefix(where), k.Value, first.Line)
		}
		explicit[k.Value] = k
	}

	var out []entry
	added := make(map[string]bool)
	for _, pr := range pairs {
		if !isMergeKey(pr.key) {
			out = append(out, entry{name: pr.key.Value, key: pr.key, value: resolve(pr.value)})
			added[pr.key.Value] = true
			continue
		}
		v := resolve(pr.value)
		var sources []*yaml.Node
		switch {
		case v != nil && v.Kind == yaml.MappingNode:
			sources = []*yaml.Node{v}
		case v != nil && v.Kind == yaml.SequenceNode:
			for _, s := range v.Content {
				s = resolve(s)
				if s == nil || s.Kind != yaml.MappingNode {
					return nil, errorAt(s, "%smerge key \"<<\" needs a mapping or a list of mappings, got a list holding %s", prefix(where), describe(s))
				}
				sources = append(sources, s)
			}
		default:
			return nil, errorAt(v, "%smerge key \"<<\" needs a mapping or a list of mappings, got %s", prefix(where), describe(v))
		}
		for _, src := range sources {
			merged, err := p.mergeEntries(src, where, visited)
			if err != nil {
				return nil, err
			}
			for _, e := range merged {
				if explicit[e.name] != nil || added[e.name] {
					continue
				}
				added[e.name] = true
				out = append(out, e)
			}
		}
	}
	return out, nil
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

func prefix(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

// mapping checks that n is a mapping (null counts as an empty one) and
// returns its entries.
func (p *parser) mapping(n *yaml.Node, where string) ([]entry, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, errorAt(n, "%s: expected a mapping, got %s", where, describe(n))
	}
	return p.entries(n, where)
}

// str reads a string value. Any scalar is accepted as its literal text
// (so "image: 3" is "3"); null is "".
func str(n *yaml.Node, where string) (string, error) {
	if isNull(n) {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", errorAt(n, "%s: expected a string, got %s", where, describe(n))
	}
	return n.Value, nil
}

// strList reads a list of strings. A single scalar is accepted as a list of
// one when single is true. hint is appended to the message for items of the
// wrong type.
func strList(n *yaml.Node, where string, single bool, hint string) ([]string, error) {
	if isNull(n) {
		return nil, nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if single {
			return []string{n.Value}, nil
		}
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for i, item := range n.Content {
			item = resolve(item)
			if item == nil || item.Kind != yaml.ScalarNode || isNull(item) {
				h := ""
				if item != nil && item.Kind == yaml.MappingNode {
					h = hint
				}
				return nil, errorAt(item, "%s[%d]: expected a string, got %s%s", where, i, describe(item), h)
			}
			out = append(out, item.Value)
		}
		return out, nil
	}
	return nil, errorAt(n, "%s: expected a list of strings, got %s", where, describe(n))
}

const commandHint = ` (a command containing ": " must be quoted)`

var stageKeys = map[string]map[string]bool{
	StageIntegration: {"image": true, "environment": true, "commands": true, "services": true},
	StagePreBuild:    {"image": true, "environment": true, "commands": true, "outputs": true},
	StagePostBuild:   {"image": true, "environment": true, "commands": true},
}

// stage parses integration, pre_build or post_build. A null stage
// ("pre_build:" with nothing under it) counts as absent.
func (p *parser) stage(name string, n *yaml.Node) (*Stage, error) {
	if isNull(n) {
		return nil, nil
	}
	entries, err := p.mapping(n, name)
	if err != nil {
		return nil, err
	}
	s := &Stage{Name: name}
	known := stageKeys[name]
	for _, e := range entries {
		where := name + "." + e.name
		if !known[e.name] {
			p.warn(e.key, "unknown key %q in %s (ignored)", e.name, name)
			continue
		}
		switch e.name {
		case "image":
			s.Image, err = str(e.value, where)
		case "environment":
			s.Environment, err = p.environment(e.value, where)
		case "commands":
			s.Commands, err = strList(e.value, where, true, commandHint)
		case "services":
			s.Services, err = p.services(e.value, where)
		case "outputs":
			s.Outputs, err = strList(e.value, where, true, "")
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// environment reads either a list of "K=V" strings or a mapping K: V whose
// scalar values, of any type, are taken as their literal text.
func (p *parser) environment(n *yaml.Node, where string) ([]string, error) {
	if isNull(n) {
		return nil, nil
	}
	var out []string
	seen := make(map[string]bool)
	add := func(at *yaml.Node, name, value string) {
		if seen[name] {
			p.warn(at, "%s: variable %q is set more than once; the last value wins", where, name)
		}
		seen[name] = true
		out = append(out, name+"="+value)
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for i, item := range n.Content {
			item = resolve(item)
			if item == nil || item.Kind != yaml.ScalarNode || isNull(item) {
				return nil, errorAt(item, "%s[%d]: expected a \"K=V\" string, got %s", where, i, describe(item))
			}
			name, value, ok := strings.Cut(item.Value, "=")
			if !ok {
				return nil, errorAt(item, "%s[%d]: entry %q has no \"=\" (expected K=V)", where, i, item.Value)
			}
			if name == "" {
				return nil, errorAt(item, "%s[%d]: entry %q has an empty variable name", where, i, item.Value)
			}
			add(item, name, value)
		}
		return out, nil
	case yaml.MappingNode:
		entries, err := p.entries(n, where)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.name == "" {
				return nil, errorAt(e.key, "%s: empty variable name", where)
			}
			if strings.Contains(e.name, "=") {
				return nil, errorAt(e.key, "%s: variable name %q must not contain \"=\"", where, e.name)
			}
			value := ""
			if !isNull(e.value) {
				if e.value.Kind != yaml.ScalarNode {
					return nil, errorAt(e.value, "%s.%s: expected a string, got %s", where, e.name, describe(e.value))
				}
				value = e.value.Value
			}
			add(e.key, e.name, value)
		}
		return out, nil
	}
	return nil, errorAt(n, "%s: expected a list of \"K=V\" strings or a mapping, got %s", where, describe(n))
}

var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (p *parser) services(n *yaml.Node, where string) ([]Service, error) {
	entries, err := p.mapping(n, where)
	if err != nil {
		return nil, err
	}
	var out []Service
	for _, e := range entries {
		swhere := where + "." + e.name
		if !serviceNameRE.MatchString(e.name) {
			return nil, errorAt(e.key, "%s: invalid service name %q (letters, digits, '_', '.' and '-', starting with a letter or digit)", where, e.name)
		}
		svc := Service{Name: e.name}
		if isNull(e.value) {
			return nil, errorAt(e.key, "%s: image is required", swhere)
		}
		fields, err := p.mapping(e.value, swhere)
		if err != nil {
			return nil, err
		}
		var imageNode *yaml.Node
		for _, f := range fields {
			fwhere := swhere + "." + f.name
			switch f.name {
			case "image":
				imageNode = f.value
				svc.Image, err = str(f.value, fwhere)
			case "environment":
				svc.Environment, err = p.environment(f.value, fwhere)
			case "command":
				svc.Command, err = command(f.value, fwhere)
			default:
				p.warn(f.key, "unknown key %q in %s (ignored)", f.name, swhere)
			}
			if err != nil {
				return nil, err
			}
		}
		if strings.TrimSpace(svc.Image) == "" {
			at := e.key
			if imageNode != nil && imageNode.Line > 0 {
				at = imageNode
			}
			return nil, errorAt(at, "%s: image is required", swhere)
		}
		out = append(out, svc)
	}
	return out, nil
}

// command reads a service command: a list is taken as is, a string is split
// into words.
func command(n *yaml.Node, where string) ([]string, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind == yaml.ScalarNode {
		words, err := splitWords(n.Value)
		if err != nil {
			return nil, errorAt(n, "%s: %v", where, err)
		}
		return words, nil
	}
	return strList(n, where, false, commandHint)
}

// splitWords splits s into words like a POSIX shell does, honouring single
// quotes, double quotes and backslashes, without any expansion.
func splitWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				if s[i] != '\n' { // backslash-newline joins lines
					cur.WriteByte(s[i])
				}
			} else {
				cur.WriteByte(c)
			}
		case c == '\'':
			inWord = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New("unterminated double quote")
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func (p *parser) build(n *yaml.Node) (Build, error) {
	var b Build
	entries, err := p.mapping(n, "build")
	if err != nil {
		return b, err
	}
	at := map[string]*yaml.Node{}
	for _, e := range entries {
		where := "build." + e.name
		switch e.name {
		case "dockerfile_name":
			b.DockerfileName, err = str(e.value, where)
		case "dockerfile_path":
			b.DockerfilePath, err = str(e.value, where)
		case "context_dir":
			b.ContextDir, err = str(e.value, where)
		default:
			p.warn(e.key, "unknown key %q in build (ignored)", e.name)
			continue
		}
		if err != nil {
			return b, err
		}
		at[e.name] = e.value
	}
	if _, _, err := b.Paths(); err != nil {
		var pe *PathError
		node := n
		if errors.As(err, &pe) && at[pe.Field] != nil {
			node = at[pe.Field]
		}
		return b, errorAt(node, "%v", err)
	}
	return b, nil
}

// PathError is returned by Build.Paths for a path that is absolute or leaves
// the repository.
type PathError struct {
	Field  string // "context_dir", "dockerfile_path" or "dockerfile_name"
	Path   string // the value as written
	Reason string
}

func (e *PathError) Error() string {
	return fmt.Sprintf("build.%s: %q %s", e.Field, e.Path, e.Reason)
}

// Paths returns the Dockerfile path and the build context directory, both
// relative to the repository root and cleaned (the root itself is ".").
//
// The context is context_dir, default ".". The Dockerfile is dockerfile_name
// (default "Dockerfile") inside the directory dockerfile_path, or inside the
// context when dockerfile_path is not set. Absolute paths and paths that
// leave the repository ("..") are rejected with a *PathError.
func (b Build) Paths() (dockerfile, contextDir string, err error) {
	contextDir, err = repoPath("context_dir", b.ContextDir)
	if err != nil {
		return "", "", err
	}
	dir := contextDir
	if b.DockerfilePath != "" {
		if dir, err = repoPath("dockerfile_path", b.DockerfilePath); err != nil {
			return "", "", err
		}
	}
	name := b.DockerfileName
	if name == "" {
		name = DefaultDockerfileName
	}
	if err := checkRelative("dockerfile_name", name); err != nil {
		return "", "", err
	}
	if clean := path.Clean(name); clean == "." || clean == ".." || strings.HasSuffix(clean, "/..") {
		return "", "", &PathError{Field: "dockerfile_name", Path: name, Reason: "does not name a file"}
	}
	dockerfile = path.Join(dir, name)
	if escapes(dockerfile) {
		return "", "", &PathError{Field: "dockerfile_name", Path: name, Reason: "points outside the repository"}
	}
	return dockerfile, contextDir, nil
}

// repoPath cleans a relative directory path; "" is the repository root.
func repoPath(field, p string) (string, error) {
	if p == "" {
		return ".", nil
	}
	if err := checkRelative(field, p); err != nil {
		return "", err
	}
	clean := path.Clean(p)
	if escapes(clean) {
		return "", &PathError{Field: field, Path: p, Reason: "points outside the repository"}
	}
	return clean, nil
}

func checkRelative(field, p string) error {
	if strings.IndexByte(p, 0) >= 0 {
		return &PathError{Field: field, Path: p, Reason: "contains a NUL byte"}
	}
	if path.IsAbs(p) || strings.HasPrefix(p, `\`) {
		return &PathError{Field: field, Path: p, Reason: "is absolute; paths must be relative to the repository root"}
	}
	return nil
}

func escapes(clean string) bool {
	return clean == ".." || strings.HasPrefix(clean, "../")
}

func (p *parser) deploy(n *yaml.Node) ([]DeployTarget, error) {
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errorAt(n, "deploy: expected a list of deploy entries, got %s", describe(n))
	}
	var out []DeployTarget
	for i, item := range n.Content {
		item = resolve(item)
		where := fmt.Sprintf("deploy[%d]", i)
		if item == nil || item.Kind != yaml.MappingNode {
			return nil, errorAt(item, "%s: expected a mapping, got %s", where, describe(item))
		}
		entries, err := p.entries(item, where)
		if err != nil {
			return nil, err
		}
		var (
			t       DeployTarget
			set     = map[string]string{} // canonical key -> spelling used
			cluster *yaml.Node
		)
		for _, e := range entries {
			fwhere := where + "." + e.name
			canonical := e.name
			switch e.name {
			case "deployment":
				canonical = "application"
			case "namespace":
				canonical = "partition"
			}
			switch canonical {
			case "type", "application", "cluster", "partition", "containers":
			default:
				p.warn(e.key, "unknown key %q in %s (ignored)", e.name, where)
				continue
			}
			if other, dup := set[canonical]; dup {
				return nil, errorAt(e.key, "%s: %q and %q mean the same; set only one", where, other, e.name)
			}
			set[canonical] = e.name
			switch canonical {
			case "type":
				t.Type, err = str(e.value, fwhere)
			case "application":
				t.Application, err = str(e.value, fwhere)
			case "cluster":
				cluster = e.value
				t.Cluster, err = str(e.value, fwhere)
			case "partition":
				t.Partition, err = str(e.value, fwhere)
			case "containers":
				t.Containers, err = strList(e.value, fwhere, true, "")
			}
			if err != nil {
				return nil, err
			}
		}
		if strings.TrimSpace(t.Cluster) == "" {
			at := item
			if cluster != nil && cluster.Line > 0 {
				at = cluster
			}
			return nil, errorAt(at, "%s: cluster is required", where)
		}
		out = append(out, t)
	}
	return out, nil
}
