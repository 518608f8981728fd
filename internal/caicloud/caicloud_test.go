package caicloud

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) (*Config, []Warning) {
	t.Helper()
	cfg, warnings, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: unexpected error: %v", err)
	}
	if cfg == nil {
		t.Fatal("Parse: nil Config without error")
	}
	return cfg, warnings
}

func warningStrings(ws []Warning) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

func TestParseFullFile(t *testing.T) {
	const src = `# A complete pipeline.
integration:
  image: golang:1.22
  environment:
    - CGO_ENABLED=0
    - GOFLAGS=-mod=readonly
  commands:
    - go vet ./...
    - go test ./...
  services:
    postgres:
      image: postgres:16
      environment:
        POSTGRES_PASSWORD: secret
      command: ["postgres", "-c", "fsync=off"]
    cache:
      image: redis:7
pre_build:
  image: golang:1.22
  commands:
    - go build -o bin/app ./cmd/app
  outputs:
    - bin/app
    - config/
build:
  dockerfile_path: deploy
  dockerfile_name: Dockerfile.release
  context_dir: .
post_build:
  image: alpine:3
  environment:
    STAGE: post
  commands:
    - echo built
deploy:
  - type: kubernetes
    application: api
    cluster: prod-1
    partition: default
    containers:
      - api
      - sidecar
  - application: worker
    cluster: prod-2
    containers: worker
`
	cfg, warnings := mustParse(t, src)
	if len(warnings) != 0 {
		t.Errorf("unexpected warnings: %v", warningStrings(warnings))
	}
	want := &Config{
		Integration: &Stage{
			Name:        "integration",
			Image:       "golang:1.22",
			Environment: []string{"CGO_ENABLED=0", "GOFLAGS=-mod=readonly"},
			Commands:    []string{"go vet ./...", "go test ./..."},
			Services: []Service{
				{Name: "postgres", Image: "postgres:16", Environment: []string{"POSTGRES_PASSWORD=secret"}, Command: []string{"postgres", "-c", "fsync=off"}},
				{Name: "cache", Image: "redis:7"},
			},
		},
		PreBuild: &Stage{
			Name:     "pre_build",
			Image:    "golang:1.22",
			Commands: []string{"go build -o bin/app ./cmd/app"},
			Outputs:  []string{"bin/app", "config/"},
		},
		Build: Build{DockerfileName: "Dockerfile.release", DockerfilePath: "deploy", ContextDir: "."},
		PostBuild: &Stage{
			Name:        "post_build",
			Image:       "alpine:3",
			Environment: []string{"STAGE=post"},
			Commands:    []string{"echo built"},
		},
		Deploy: []DeployTarget{
			{Type: "kubernetes", Application: "api", Cluster: "prod-1", Partition: "default", Containers: []string{"api", "sidecar"}},
			{Application: "worker", Cluster: "prod-2", Containers: []string{"worker"}},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config mismatch\n got: %#v\nwant: %#v", cfg, want)
	}
	dockerfile, contextDir, err := cfg.Build.Paths()
	if err != nil || dockerfile != "deploy/Dockerfile.release" || contextDir != "." {
		t.Errorf("Paths() = %q, %q, %v", dockerfile, contextDir, err)
	}
}

// A file as Cyclone users wrote them: Docker options next to the stage keys,
// the old "deployment"/"namespace" spellings, a string service command.
func TestParseCycloneStyleFile(t *testing.T) {
	const src = `integration:
  image: golang:1.6
  privileged: true
  environment:
    - GOPATH=/go
    - MONGO_HOST=mongo
  commands:
    - go test -v ./...
  services:
    mongo:
      image: mongo:3.0.5
      ports:
        - "27017:27017"
      command: mongod --smallfiles --oplogSize 128 --bind_ip "0.0.0.0"
pre_build:
  image: golang:1.6
  volumes:
    - .:/go/src/github.com/caicloud/cyclone
  working_dir: /go/src/github.com/caicloud/cyclone
  cpus: 2
  commands:
    - make build
  outputs:
    - cyclone-server
build:
  dockerfile_name: Dockerfile.publish
post_build:
  image: alpine
  links:
    - mongo
  commands: echo "built $GIT_COMMIT"
deploy:
  - type: kubernetes
    deployment: cyclone-server
    cluster: cluster-1
    namespace: devops
    containers:
      - cyclone-server
notify:
  email: ops@example.com
`
	cfg, warnings := mustParse(t, src)
	wantWarnings := []string{
		`caicloud.yml:3:3: unknown key "privileged" in integration (ignored)`,
		`caicloud.yml:12:7: unknown key "ports" in integration.services.mongo (ignored)`,
		`caicloud.yml:17:3: unknown key "volumes" in pre_build (ignored)`,
		`caicloud.yml:19:3: unknown key "working_dir" in pre_build (ignored)`,
		`caicloud.yml:20:3: unknown key "cpus" in pre_build (ignored)`,
		`caicloud.yml:29:3: unknown key "links" in post_build (ignored)`,
		`caicloud.yml:39:1: unknown key "notify" at top level (ignored)`,
	}
	if got := warningStrings(warnings); !reflect.DeepEqual(got, wantWarnings) {
		t.Errorf("warnings:\n got: %q\nwant: %q", got, wantWarnings)
	}
	want := &Config{
		Integration: &Stage{
			Name:        "integration",
			Image:       "golang:1.6",
			Environment: []string{"GOPATH=/go", "MONGO_HOST=mongo"},
			Commands:    []string{"go test -v ./..."},
			Services: []Service{{
				Name:    "mongo",
				Image:   "mongo:3.0.5",
				Command: []string{"mongod", "--smallfiles", "--oplogSize", "128", "--bind_ip", "0.0.0.0"},
			}},
		},
		PreBuild: &Stage{
			Name:     "pre_build",
			Image:    "golang:1.6",
			Commands: []string{"make build"},
			Outputs:  []string{"cyclone-server"},
		},
		Build: Build{DockerfileName: "Dockerfile.publish"},
		PostBuild: &Stage{
			Name:     "post_build",
			Image:    "alpine",
			Commands: []string{`echo "built $GIT_COMMIT"`},
		},
		Deploy: []DeployTarget{{
			Type:        "kubernetes",
			Application: "cyclone-server",
			Cluster:     "cluster-1",
			Partition:   "devops",
			Containers:  []string{"cyclone-server"},
		}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config mismatch\n got: %#v\nwant: %#v", cfg, want)
	}
	w := warnings[0]
	if w.Line != 3 || w.Column != 3 || w.Message != `unknown key "privileged" in integration (ignored)` {
		t.Errorf("first warning fields = %+v", w)
	}
}

func TestEnvironmentStyles(t *testing.T) {
	listCfg, _ := mustParse(t, `pre_build:
  environment:
    - PORT=8080
    - DEBUG=true
    - DSN=user=a password=b
    - EMPTY=
`)
	if got, want := listCfg.PreBuild.Environment, []string{"PORT=8080", "DEBUG=true", "DSN=user=a password=b", "EMPTY="}; !reflect.DeepEqual(got, want) {
		t.Errorf("list style: got %q, want %q", got, want)
	}

	// Map values of any scalar type keep their literal text.
	mapCfg, _ := mustParse(t, `pre_build:
  environment:
    PORT: 8080
    DEBUG: true
    RATIO: 1.50
    MODE: 0755
    HEX: 0x1F
    EMPTY:
    TILDE: ~
    QUOTED: "a=b"
    WHEN: 2024-01-02
    MULTI: |
      line1
      line2
`)
	want := []string{
		"PORT=8080", "DEBUG=true", "RATIO=1.50", "MODE=0755", "HEX=0x1F",
		"EMPTY=", "TILDE=", "QUOTED=a=b", "WHEN=2024-01-02", "MULTI=line1\nline2\n",
	}
	if got := mapCfg.PreBuild.Environment; !reflect.DeepEqual(got, want) {
		t.Errorf("map style: got %q, want %q", got, want)
	}

	// Flow styles work too.
	flowCfg, _ := mustParse(t, "post_build: {environment: {A: 1, B: two}}\nintegration: {environment: [X=1, Y=2]}\n")
	if got := flowCfg.PostBuild.Environment; !reflect.DeepEqual(got, []string{"A=1", "B=two"}) {
		t.Errorf("flow map: got %q", got)
	}
	if got := flowCfg.Integration.Environment; !reflect.DeepEqual(got, []string{"X=1", "Y=2"}) {
		t.Errorf("flow list: got %q", got)
	}
}

func TestDuplicateEnvironmentVariableWarns(t *testing.T) {
	cfg, warnings := mustParse(t, "pre_build:\n  environment:\n    - A=1\n    - A=2\n")
	if got := cfg.PreBuild.Environment; !reflect.DeepEqual(got, []string{"A=1", "A=2"}) {
		t.Errorf("environment = %q", got)
	}
	want := []string{`caicloud.yml:4:7: pre_build.environment: variable "A" is set more than once; the last value wins`}
	if got := warningStrings(warnings); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
}

func TestCommandsAsSingleString(t *testing.T) {
	cfg, _ := mustParse(t, "pre_build:\n  commands: make all\nintegration:\n  commands: |\n    set -e\n    make test\n")
	if got := cfg.PreBuild.Commands; !reflect.DeepEqual(got, []string{"make all"}) {
		t.Errorf("pre_build commands = %q", got)
	}
	if got := cfg.Integration.Commands; !reflect.DeepEqual(got, []string{"set -e\nmake test\n"}) {
		t.Errorf("integration commands = %q", got)
	}
}

func TestNullStagesAreAbsent(t *testing.T) {
	cfg, warnings := mustParse(t, "integration:\npre_build: ~\nbuild:\npost_build: null\ndeploy:\n")
	if cfg.Integration != nil || cfg.PreBuild != nil || cfg.PostBuild != nil || cfg.Deploy != nil || cfg.Build != (Build{}) {
		t.Errorf("expected an empty config, got %#v", cfg)
	}
	if len(warnings) != 0 {
		t.Errorf("unexpected warnings %v", warningStrings(warnings))
	}
	// An empty mapping is a present, empty stage.
	cfg, _ = mustParse(t, "post_build: {}\n")
	if cfg.PostBuild == nil || cfg.PostBuild.Name != "post_build" {
		t.Errorf("post_build = %#v", cfg.PostBuild)
	}
}

func TestStageSpecificKeys(t *testing.T) {
	_, warnings := mustParse(t, "pre_build:\n  services:\n    db: {image: x}\nintegration:\n  outputs: [a]\npost_build:\n  outputs: [b]\n")
	want := []string{
		`caicloud.yml:2:3: unknown key "services" in pre_build (ignored)`,
		`caicloud.yml:5:3: unknown key "outputs" in integration (ignored)`,
		`caicloud.yml:7:3: unknown key "outputs" in post_build (ignored)`,
	}
	if got := warningStrings(warnings); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings = %q, want %q", got, want)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	const src = `x-common: &common
  image: golang:1.22
  environment: &env
    GOFLAGS: -mod=vendor
    CGO_ENABLED: "0"
integration:
  <<: *common
  commands: [go test ./...]
pre_build:
  <<: *common
  image: golang:1.22-alpine
  commands: [go build ./...]
post_build:
  environment: *env
`
	cfg, warnings := mustParse(t, src)
	if got := warningStrings(warnings); !reflect.DeepEqual(got, []string{`caicloud.yml:1:1: unknown key "x-common" at top level (ignored)`}) {
		t.Errorf("warnings = %q", got)
	}
	env := []string{"GOFLAGS=-mod=vendor", "CGO_ENABLED=0"}
	if s := cfg.Integration; s.Image != "golang:1.22" || !reflect.DeepEqual(s.Environment, env) || !reflect.DeepEqual(s.Commands, []string{"go test ./..."}) {
		t.Errorf("integration = %#v", s)
	}
	if s := cfg.PreBuild; s.Image != "golang:1.22-alpine" || !reflect.DeepEqual(s.Environment, env) {
		t.Errorf("pre_build (explicit key must win over merged one) = %#v", s)
	}
	if s := cfg.PostBuild; !reflect.DeepEqual(s.Environment, env) {
		t.Errorf("post_build = %#v", s)
	}
}

func TestMergeKeyChainsStayLinear(t *testing.T) {
	// Each level merges the previous one twice; expanding naively would take
	// 2^40 steps.
	var b strings.Builder
	b.WriteString("m0: &m0 {image: x}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "m%d: &m%d {<<: [*m%d, *m%d]}\n", i, i, i-1, i-1)
	}
	b.WriteString("pre_build: *m40\n")
	cfg, _ := mustParse(t, b.String())
	if cfg.PreBuild.Image != "x" {
		t.Errorf("image = %q", cfg.PreBuild.Image)
	}
}

func TestServiceCommandForms(t *testing.T) {
	cfg, _ := mustParse(t, `integration:
  services:
    a:
      image: busybox
      command: sh -c 'echo "hello world"; sleep 1'
    b:
      image: busybox
      command:
        - sh
        - -c
        - echo hi
    c:
      image: busybox
      command: echo a\ b "c\"d" ''
`)
	got := map[string][]string{}
	for _, s := range cfg.Integration.Services {
		got[s.Name] = s.Command
	}
	want := map[string][]string{
		"a": {"sh", "-c", `echo "hello world"; sleep 1`},
		"b": {"sh", "-c", "echo hi"},
		"c": {"echo", "a b", `c"d`, ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("commands = %q, want %q", got, want)
	}
	if names := []string{cfg.Integration.Services[0].Name, cfg.Integration.Services[1].Name, cfg.Integration.Services[2].Name}; !reflect.DeepEqual(names, []string{"a", "b", "c"}) {
		t.Errorf("services not in file order: %v", names)
	}
}

func TestDeployAliases(t *testing.T) {
	cfg, _ := mustParse(t, `deploy:
  - application: a
    cluster: c1
    partition: p1
  - deployment: b
    cluster: c2
    namespace: p2
    containers: [x, y]
`)
	want := []DeployTarget{
		{Application: "a", Cluster: "c1", Partition: "p1"},
		{Application: "b", Cluster: "c2", Partition: "p2", Containers: []string{"x", "y"}},
	}
	if !reflect.DeepEqual(cfg.Deploy, want) {
		t.Errorf("deploy = %#v", cfg.Deploy)
	}
}

func TestEmptyFiles(t *testing.T) {
	for _, src := range []string{
		"",
		"\n\n",
		"# just a comment\n",
		"# comment\n\n   # another\n",
		"---\n",
		"--- # nothing\n...\n",
		"~\n",
		"null",
		"{}",
	} {
		cfg, warnings, err := Parse([]byte(src))
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if !reflect.DeepEqual(cfg, &Config{}) || len(warnings) != 0 {
			t.Errorf("Parse(%q) = %#v, %v; want empty config", src, cfg, warnings)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"commands mapping", "pre_build:\n  commands: {a: b}\n",
			"caicloud.yml:2:13: pre_build.commands: expected a list of strings, got a mapping"},
		{"top level list", "- a\n- b\n",
			"caicloud.yml:1:1: expected a mapping at the top level, got a list"},
		{"top level scalar", "hello\n",
			"caicloud.yml:1:1: expected a mapping at the top level, got a string"},
		{"stage not a mapping", "pre_build: [a]\n",
			"caicloud.yml:1:12: pre_build: expected a mapping, got a list"},
		{"image list", "integration:\n  image: [golang]\n",
			"caicloud.yml:2:10: integration.image: expected a string, got a list"},
		{"env entry without =", "integration:\n  environment:\n    - GOPATH=/go\n    - DEBUG\n",
			`caicloud.yml:4:7: integration.environment[1]: entry "DEBUG" has no "=" (expected K=V)`},
		{"env entry empty name", "integration:\n  environment:\n    - =x\n",
			`caicloud.yml:3:7: integration.environment[0]: entry "=x" has an empty variable name`},
		{"env list of mappings", "pre_build:\n  environment:\n    - A: b\n",
			`caicloud.yml:3:7: pre_build.environment[0]: expected a "K=V" string, got a mapping`},
		{"env string", "integration:\n  environment: FOO=bar\n",
			`caicloud.yml:2:16: integration.environment: expected a list of "K=V" strings or a mapping, got a string`},
		{"env map nested value", "post_build:\n  environment:\n    A: [1]\n",
			"caicloud.yml:3:8: post_build.environment.A: expected a string, got a list"},
		{"env map key with =", "post_build:\n  environment:\n    A=B: c\n",
			`caicloud.yml:3:5: post_build.environment: variable name "A=B" must not contain "="`},
		{"command item is a mapping", "pre_build:\n  commands:\n    - echo: hi\n",
			`caicloud.yml:3:7: pre_build.commands[0]: expected a string, got a mapping (a command containing ": " must be quoted)`},
		{"command item null", "pre_build:\n  commands:\n    - make\n    -\n",
			`caicloud.yml:4:6: pre_build.commands[1]: expected a string, got null`},
		{"outputs mapping", "pre_build:\n  outputs: {a: 1}\n",
			"caicloud.yml:2:12: pre_build.outputs: expected a list of strings, got a mapping"},
		{"services list", "integration:\n  services: [db]\n",
			"caicloud.yml:2:13: integration.services: expected a mapping, got a list"},
		{"service empty image", "integration:\n  services:\n    db:\n      image: \"\"\n",
			"caicloud.yml:4:14: integration.services.db: image is required"},
		{"service missing image", "integration:\n  services:\n    db:\n      command: x\n",
			"caicloud.yml:3:5: integration.services.db: image is required"},
		{"service null", "integration:\n  services:\n    db:\n",
			"caicloud.yml:3:5: integration.services.db: image is required"},
		{"service bad name", "integration:\n  services:\n    \"my db\": {image: x}\n",
			`caicloud.yml:3:5: integration.services: invalid service name "my db" (letters, digits, '_', '.' and '-', starting with a letter or digit)`},
		{"service unterminated quote", "integration:\n  services:\n    db:\n      image: x\n      command: echo 'oops\n",
			"caicloud.yml:5:16: integration.services.db.command: unterminated single quote"},
		{"deploy missing cluster", "deploy:\n  - application: a\n    partition: p\n",
			"caicloud.yml:2:5: deploy[0]: cluster is required"},
		{"deploy empty cluster", "deploy:\n  - application: a\n  - application: b\n    cluster: \"\"\n",
			"caicloud.yml:2:5: deploy[0]: cluster is required"},
		{"deploy second entry empty cluster", "deploy:\n  - application: a\n    cluster: c\n  - application: b\n    cluster: \"\"\n",
			"caicloud.yml:5:14: deploy[1]: cluster is required"},
		{"deploy mapping", "deploy:\n  cluster: c\n",
			"caicloud.yml:2:3: deploy: expected a list of deploy entries, got a mapping"},
		{"deploy entry scalar", "deploy:\n  - prod\n",
			"caicloud.yml:2:5: deploy[0]: expected a mapping, got a string"},
		{"deploy alias conflict", "deploy:\n  - cluster: c\n    application: a\n    deployment: b\n",
			`caicloud.yml:4:5: deploy[0]: "application" and "deployment" mean the same; set only one`},
		{"duplicate stage key", "pre_build:\n  image: a\n  image: b\n",
			`caicloud.yml:3:3: pre_build: duplicate key "image" (first defined at line 2)`},
		{"duplicate top-level key", "build: {}\nbuild: {}\n",
			`caicloud.yml:2:1: duplicate key "build" (first defined at line 1)`},
		{"duplicate env key", "post_build:\n  environment:\n    A: 1\n    A: 2\n",
			`caicloud.yml:4:5: post_build.environment: duplicate key "A" (first defined at line 3)`},
		{"duplicate service", "integration:\n  services:\n    db: {image: a}\n    db: {image: b}\n",
			`caicloud.yml:4:5: integration.services: duplicate key "db" (first defined at line 3)`},
		{"non-string key", "? [a, b]\n: c\n",
			"caicloud.yml:1:3: keys must be strings, got a list"},
		{"bad merge", "pre_build:\n  <<: [1]\n",
			`caicloud.yml:2:8: pre_build: merge key "<<" needs a mapping or a list of mappings, got a list holding a number`},
		{"build absolute", "build:\n  context_dir: /etc\n",
			`caicloud.yml:2:16: build.context_dir: "/etc" is absolute; paths must be relative to the repository root`},
		{"build escape", "build:\n  dockerfile_path: ../other\n",
			`caicloud.yml:2:20: build.dockerfile_path: "../other" points outside the repository`},
		{"build name escape", "build:\n  dockerfile_path: a\n  dockerfile_name: ../../Dockerfile\n",
			`caicloud.yml:3:20: build.dockerfile_name: "../../Dockerfile" points outside the repository`},
		{"build not a mapping", "build: Dockerfile\n",
			"caicloud.yml:1:8: build: expected a mapping, got a string"},
		{"second document", "build: {}\n---\ndeploy: []\n",
			"caicloud.yml:3:1: found a second YAML document; caicloud.yml must hold exactly one"},

		// Syntax errors: yaml.v3 gives the line only.
		{"tab indentation", "pre_build:\n  image: a\n\tcommands: []\n",
			"caicloud.yml:2: invalid YAML: found a tab character that violates indentation"},
		{"unclosed flow list", "pre_build:\n  image: a\n  commands: [a\n",
			"caicloud.yml:3: invalid YAML: did not find expected ',' or ']'"},
		{"bad indentation", "pre_build:\n  image: a\n  commands:\n    - make\n bad: x\n",
			"caicloud.yml:5: invalid YAML: did not find expected key"},
		{"list after mapping", "build: {}\npre_build: {}\n- oops\n",
			"caicloud.yml:3: invalid YAML: did not find expected key"},
		{"unterminated string", "pre_build:\n  commands:\n    - \"make\n",
			"caicloud.yml:3: invalid YAML: found unexpected end of stream"},
		{"mapping on line 1", "pre_build: image: a\n",
			"caicloud.yml:1: invalid YAML: mapping values are not allowed in this context"},
		{"unknown anchor", "build:\n  context_dir: *dir\n",
			"caicloud.yml:2:16: invalid YAML: unknown anchor 'dir' referenced"},
		{"control character", "pre_build:\n  image: \"a\x01\"\n",
			"caicloud.yml:2:12: invalid YAML: control characters are not allowed"},
		{"invalid utf-8", "pre_build:\n  image: a\xff\n",
			"caicloud.yml:2:11: invalid YAML: invalid leading UTF-8 octet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("expected error %q, got config %#v", tt.want, cfg)
			}
			if cfg != nil {
				t.Errorf("config must be nil on error, got %#v", cfg)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error mismatch\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	_, _, err := Parse([]byte("pre_build:\n  commands: {a: b}\n"))
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("got %T", err)
	}
	if perr.Line != 2 || perr.Column != 13 || perr.Reason != "pre_build.commands: expected a list of strings, got a mapping" {
		t.Errorf("fields = %+v", perr)
	}
}

func TestWarningsBeforeErrorAreReturned(t *testing.T) {
	_, warnings, err := Parse([]byte("pre_build:\n  volumes: [a]\n  image: [b]\n"))
	if err == nil {
		t.Fatal("expected an error")
	}
	if got := warningStrings(warnings); !reflect.DeepEqual(got, []string{`caicloud.yml:2:3: unknown key "volumes" in pre_build (ignored)`}) {
		t.Errorf("warnings = %q", got)
	}
}

func TestBuildPaths(t *testing.T) {
	tests := []struct {
		build                  Build
		dockerfile, contextDir string
	}{
		{Build{}, "Dockerfile", "."},
		{Build{ContextDir: "."}, "Dockerfile", "."},
		{Build{ContextDir: "app"}, "app/Dockerfile", "app"},
		{Build{ContextDir: "./app/"}, "app/Dockerfile", "app"},
		{Build{DockerfileName: "Dockerfile.prod"}, "Dockerfile.prod", "."},
		{Build{DockerfileName: "Dockerfile.prod", ContextDir: "svc"}, "svc/Dockerfile.prod", "svc"},
		{Build{DockerfilePath: "docker"}, "docker/Dockerfile", "."},
		{Build{DockerfilePath: "docker/", ContextDir: "src"}, "docker/Dockerfile", "src"},
		{Build{DockerfilePath: "deploy", DockerfileName: "Dockerfile.release", ContextDir: "src"}, "deploy/Dockerfile.release", "src"},
		{Build{DockerfilePath: "a/../b"}, "b/Dockerfile", "."},
		{Build{DockerfilePath: "a", DockerfileName: "../Dockerfile"}, "Dockerfile", "."},
		{Build{DockerfilePath: ".", ContextDir: "x"}, "Dockerfile", "x"},
	}
	for _, tt := range tests {
		dockerfile, contextDir, err := tt.build.Paths()
		if err != nil || dockerfile != tt.dockerfile || contextDir != tt.contextDir {
			t.Errorf("%+v.Paths() = %q, %q, %v; want %q, %q", tt.build, dockerfile, contextDir, err, tt.dockerfile, tt.contextDir)
		}
	}
}

func TestBuildPathsRejectsEscapes(t *testing.T) {
	tests := []struct {
		build Build
		field string
	}{
		{Build{ContextDir: "/abs"}, "context_dir"},
		{Build{ContextDir: ".."}, "context_dir"},
		{Build{ContextDir: "../"}, "context_dir"},
		{Build{ContextDir: "a/../../b"}, "context_dir"},
		{Build{ContextDir: `\\server\share`}, "context_dir"},
		{Build{DockerfilePath: "/etc"}, "dockerfile_path"},
		{Build{DockerfilePath: "../x"}, "dockerfile_path"},
		{Build{DockerfileName: "/etc/passwd"}, "dockerfile_name"},
		{Build{DockerfileName: "../Dockerfile"}, "dockerfile_name"},
		{Build{DockerfilePath: "a", DockerfileName: "../../Dockerfile"}, "dockerfile_name"},
		{Build{ContextDir: "app", DockerfileName: "../../Dockerfile"}, "dockerfile_name"},
		{Build{DockerfileName: "."}, "dockerfile_name"},
		{Build{DockerfileName: ".."}, "dockerfile_name"},
		{Build{DockerfilePath: "a", DockerfileName: "b/.."}, "dockerfile_name"},
		{Build{ContextDir: "a\x00b"}, "context_dir"},
	}
	for _, tt := range tests {
		dockerfile, contextDir, err := tt.build.Paths()
		var perr *PathError
		if !errors.As(err, &perr) {
			t.Errorf("%+v.Paths() = %q, %q, %v; want a *PathError", tt.build, dockerfile, contextDir, err)
			continue
		}
		if perr.Field != tt.field {
			t.Errorf("%+v.Paths(): error %q names field %q, want %q", tt.build, err, perr.Field, tt.field)
		}
		if dockerfile != "" || contextDir != "" {
			t.Errorf("%+v.Paths() returned paths with an error", tt.build)
		}
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"a b  c", []string{"a", "b", "c"}},
		{`a "b c" 'd e'`, []string{"a", "b c", "d e"}},
		{`a"b"'c'd`, []string{"abcd"}},
		{`"" ''`, []string{"", ""}},
		{`a\ b`, []string{"a b"}},
		{`"a\"b" 'a\b'`, []string{`a"b`, `a\b`}},
		{`"a\xb"`, []string{`a\xb`}},
		{"a \\\nb", []string{"a", "b"}},
		{`trailing\`, []string{`trailing\`}},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`'a`, `"a`, `a "b\"`} {
		if _, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q): expected an error", bad)
		}
	}
}

var fuzzSeeds = []string{
	"",
	"# comment\n",
	"integration:\n  image: golang\n  environment: [A=1]\n  commands: [go test]\n  services:\n    db: {image: mongo, command: mongod --quiet}\n",
	"pre_build:\n  environment: {A: 1, B: true}\n  commands: make\n  outputs: [bin]\n",
	"build:\n  dockerfile_path: d\n  dockerfile_name: Dockerfile.x\n  context_dir: ../x\n",
	"deploy:\n  - deployment: a\n    cluster: c\n    namespace: n\n    containers: [x]\n",
	"pre_build:\n  commands: {a: b}\n",
	"a: &x [*x]\npre_build: {<<: *x}\n",
	"x: &m {image: a}\npre_build: {<<: [*m, *m]}\n",
	"integration:\n  services:\n    db:\n      image: x\n      command: \"a 'b\n",
	"- a\n",
	"a: b: c\n",
	"\tfoo: bar\n",
	"pre_build: !!binary aGVsbG8=\n",
	"deploy: [{cluster: !custom x, containers: *a}]\n",
	"{\"integration\": {\"environment\": {\"\": 1}}}",
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, warnings, err := Parse(data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", cfg, err)
		}
		for _, w := range warnings {
			if w.Message == "" || w.Line < 0 || w.Column < 0 {
				t.Fatalf("bad warning %+v", w)
			}
		}
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if perr.Reason == "" || perr.Line < 0 || perr.Column < 0 {
				t.Fatalf("bad error %+v", perr)
			}
			return
		}
		// Parse validated the build paths already.
		if _, _, err := cfg.Build.Paths(); err != nil {
			t.Fatalf("Parse accepted build paths that Paths rejects: %v", err)
		}
		for name, s := range map[string]*Stage{"integration": cfg.Integration, "pre_build": cfg.PreBuild, "post_build": cfg.PostBuild} {
			if s == nil {
				continue
			}
			if s.Name != name {
				t.Fatalf("stage %s has Name %q", name, s.Name)
			}
			for _, kv := range s.Environment {
				if i := strings.IndexByte(kv, '='); i <= 0 {
					t.Fatalf("bad environment entry %q", kv)
				}
			}
			for _, svc := range s.Services {
				if strings.TrimSpace(svc.Image) == "" {
					t.Fatalf("service %q without image", svc.Name)
				}
			}
		}
		for _, d := range cfg.Deploy {
			if strings.TrimSpace(d.Cluster) == "" {
				t.Fatalf("deploy target without cluster: %+v", d)
			}
		}
	})
}
