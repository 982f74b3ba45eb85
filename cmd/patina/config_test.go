package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfig_ExampleParsesToDefaults(t *testing.T) {
	cfg, err := LoadConfig("patina.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	def := NewConfig()
	if cfg.Region != def.Region || cfg.DB.Path != def.DB.Path || cfg.Gossip.Addr != def.Gossip.Addr ||
		cfg.API.Addr != def.API.Addr || cfg.Gossip.Plaintext != def.Gossip.Plaintext || cfg.Admin.Path != def.Admin.Path {
		t.Fatalf("example config drifted from NewConfig():\n%+v\n%+v", cfg, def)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfig_CorrosionKeys(t *testing.T) {
	cfg := mustLoad(t, `
region = "fra"
[db]
path = "/var/lib/patina/state.db"
[gossip]
addr = "10.0.0.1:8787"
bootstrap = ["10.0.0.2:8787", "10.0.0.3:8787"]
plaintext = true
[api]
addr = "127.0.0.1:8080"
authz.bearer-token = "s3cret"
`)
	if cfg.API.Authz.BearerToken != "s3cret" || len(cfg.Gossip.Bootstrap) != 2 || cfg.Region != "fra" {
		t.Fatalf("parsed %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfig_BadConfigNamesKeyAndProblem(t *testing.T) {
	for _, tc := range []struct{ name, toml, want string }{
		{"unknown key", "[db]\npaht = \"x\"\n", "unknown key(s) db.paht"},
		{"bad addr", "[gossip]\naddr = \"nope\"\n", "config key gossip.addr: \"nope\" is not host:port"},
		{"wildcard gossip", "[gossip]\naddr = \"0.0.0.0:8787\"\n", "gossip.addr: \"0.0.0.0:8787\" must name the IP peers reach"},
		{"tls", "[gossip]\nplaintext = false\n", "config key gossip.plaintext"},
		{"bad bootstrap", "[gossip]\nbootstrap = [\"x\"]\n", "gossip.bootstrap[0]"},
		{"missing schema", "[db]\nschema_paths = [\"/nonexistent/schema.sql\"]\n", "db.schema_paths[0]"},
		{"type error", "[api]\naddr = 8080\n", "api.addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "patina.toml")
			os.WriteFile(path, []byte(tc.toml), 0o644)
			cfg, err := LoadConfig(path)
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func mustLoad(t *testing.T, text string) *Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "patina.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
