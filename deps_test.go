package berth_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection keeps the imports flowing one way (DESIGN.md §3):
// cmd → api | web → engine | queue | auth | metrics → store | docker | build | git | proxy → berth.
// Adapters never import the store or the engine, the engine never imports
// an adapter, and the root package uses the standard library only.
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/berthhq/berth"
	forbidden := map[string][]string{
		"":        {"/"}, // the root: nothing of the module
		"engine":  {"/docker", "/build", "/git", "/proxy", "/api", "/web", "/auth", "/cmd"},
		"queue":   {"/engine", "/docker", "/build", "/git", "/proxy", "/api", "/web", "/cmd"},
		"store":   {"/engine", "/queue", "/docker", "/build", "/git", "/proxy", "/api", "/web", "/auth", "/cmd"},
		"docker":  {"/store", "/engine", "/queue", "/api", "/web", "/auth", "/git", "/proxy", "/cmd"},
		"build":   {"/store", "/engine", "/queue", "/api", "/web", "/auth", "/git", "/proxy", "/cmd"},
		"egress":  {"/store", "/engine", "/queue", "/api", "/web", "/auth", "/docker", "/build", "/git", "/proxy", "/cmd"},
		"git":     {"/store", "/engine", "/queue", "/api", "/web", "/auth", "/docker", "/build", "/proxy", "/cmd"},
		"proxy":   {"/store", "/engine", "/queue", "/api", "/web", "/auth", "/docker", "/build", "/git", "/cmd"},
		"metrics": {"/engine", "/queue", "/docker", "/build", "/git", "/proxy", "/api", "/web", "/auth", "/cmd"},
		"auth":    {"/engine", "/queue", "/api", "/web", "/docker", "/build", "/proxy", "/cmd"},
		"api":     {"/web", "/docker", "/build", "/proxy", "/cmd"},
		"web":     {"/api", "/docker", "/build", "/git", "/proxy", "/cmd"},
	}
	for pkg, bad := range forbidden {
		path := mod
		if pkg != "" {
			path += "/" + pkg
		}
		out, err := exec.Command("go", "list", "-deps", path).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", path, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			rest, ok := strings.CutPrefix(dep, mod)
			if !ok || dep == path {
				continue
			}
			for _, b := range bad {
				if rest == b || strings.HasPrefix(rest, b+"/") || (b == "/" && strings.HasPrefix(rest, "/")) {
					t.Errorf("%s imports %s", path, dep)
				}
			}
		}
	}
}
