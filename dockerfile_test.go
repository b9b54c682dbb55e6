package prism_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// No Docker engine runs here, so the Dockerfile's invariants are checked by
// parsing it with BuildKit's own parser.
func TestDockerfile(t *testing.T) {
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ast, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]instructions.Stage{}
	var names []string
	for _, s := range stages {
		byName[s.Name] = s
		names = append(names, s.Name)
	}
	for _, want := range []string{"build", "runtime", "lambda", "server"} {
		if _, ok := byName[want]; !ok {
			t.Fatalf("no %q stage in %v", want, names)
		}
	}
	if names[len(names)-1] != "server" {
		t.Errorf("the default (last) target is %q, want server", names[len(names)-1])
	}

	// The build stage builds with the make target CI uses.
	if !runs(byName["build"], "make build") || !strings.Contains(byName["build"].BaseName, "golang:1.26-bookworm") {
		t.Errorf("build stage: from %s, runs %v", byName["build"].BaseName, commands(byName["build"]))
	}

	// The runtime is slim Debian with the libvips runtime, no toolchain.
	rt := byName["runtime"]
	if rt.BaseName != "debian:bookworm-slim" {
		t.Errorf("runtime from %s", rt.BaseName)
	}
	install := strings.Join(commands(rt), " ")
	if !strings.Contains(install, "libvips42") {
		t.Errorf("runtime does not install libvips42: %s", install)
	}
	for _, tool := range []string{"-dev", "gcc", "golang", "build-essential", "make ", "pkg-config"} {
		if strings.Contains(install, tool) {
			t.Errorf("runtime installs %q: %s", tool, install)
		}
	}
	for _, s := range []string{"lambda", "server"} {
		if base := byName[s].BaseName; base != "runtime" {
			t.Errorf("%s stage builds on %s, not the runtime", s, base)
		}
		for _, c := range byName[s].Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "build" {
				t.Errorf("%s copies from %q", s, cp.From)
			}
		}
	}

	// Non-root, with the memory setting, a port and a health check.
	user := ""
	env := map[string]string{}
	for _, c := range rt.Commands {
		switch c := c.(type) {
		case *instructions.UserCommand:
			user = c.User
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env[kv.Key] = kv.Value
			}
		}
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("runtime user %q: want a non-root user", user)
	}
	if env["MALLOC_ARENA_MAX"] != "2" {
		t.Errorf("MALLOC_ARENA_MAX = %q", env["MALLOC_ARENA_MAX"])
	}
	var exposed []string
	var health *instructions.HealthCheckCommand
	var entry []string
	for _, c := range byName["server"].Commands {
		switch c := c.(type) {
		case *instructions.ExposeCommand:
			exposed = append(exposed, c.Ports...)
		case *instructions.HealthCheckCommand:
			health = c
		case *instructions.EntrypointCommand:
			entry = c.CmdLine
		}
	}
	if !slices.Contains(exposed, "8080") || !slices.Contains(exposed, "9464") {
		t.Errorf("server exposes %v", exposed)
	}
	if health == nil || !slices.Equal(health.Health.Test, []string{"CMD", "/usr/local/bin/server", "health"}) {
		t.Errorf("server health check: %+v", health)
	}
	if !slices.Equal(entry, []string{"/usr/local/bin/server"}) {
		t.Errorf("server entrypoint %v", entry)
	}
}

func commands(s instructions.Stage) []string {
	var out []string
	for _, c := range s.Commands {
		if r, ok := c.(*instructions.RunCommand); ok {
			out = append(out, strings.Join(r.CmdLine, " "))
		}
	}
	return out
}

func runs(s instructions.Stage, cmd string) bool {
	return slices.ContainsFunc(commands(s), func(c string) bool { return strings.Contains(c, cmd) })
}
