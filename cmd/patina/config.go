package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/patinadb/patina/pubsub"
)

// Config is the operator's TOML configuration. Section and key names follow
// Corrosion's where they overlap, so a Corrosion config mostly carries over.
type Config struct {
	Region string       `toml:"region"`
	DB     DBConfig     `toml:"db"`
	Gossip GossipConfig `toml:"gossip"`
	API    APIConfig    `toml:"api"`
	Admin  AdminConfig  `toml:"admin"`
	// Subscriptions is [subscriptions]: the change log's retention and
	// the bounds of each subscription.
	Subscriptions SubscriptionsConfig `toml:"subscriptions"`
}

// DBConfig is [db].
type DBConfig struct {
	// Path of the SQLite file. Default ./patina-data/state.db.
	Path string `toml:"path"`
	// SchemaPaths are *.sql files or directories; empty means the built-in
	// service discovery schema.
	SchemaPaths []string `toml:"schema_paths"`
	// SubscriptionsPath is the directory of the subscriptions' change log
	// (Corrosion's key). Empty means a "subscriptions" directory beside
	// path.
	SubscriptionsPath string `toml:"subscriptions_path"`
}

// SubscriptionsConfig is [subscriptions].
type SubscriptionsConfig struct {
	// MaxChanges is how many of each subscription's latest changes are
	// kept for clients resuming with ?from=. Default 10000.
	MaxChanges int `toml:"max_changes"`
	// MaxAge is how long a change is kept for resumes. Default "1h".
	MaxAge Duration `toml:"max_age"`
	// IdleTimeout is how long a subscription without clients is kept.
	// Default "10m".
	IdleTimeout Duration `toml:"idle_timeout"`
	// EvalTimeout bounds every evaluation of a subscription's query.
	// Default "10s".
	EvalTimeout Duration `toml:"eval_timeout"`
}

// Duration is a TOML string like "90s" or "1h".
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"30s\" or \"1h\"", b)
	}
	d.Duration = v
	return nil
}

// MarshalText formats the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// GossipConfig is [gossip].
type GossipConfig struct {
	// Addr is the one peer address: SWIM (UDP+TCP) and the data plane.
	Addr string `toml:"addr"`
	// Bootstrap lists peers' gossip addresses to join.
	Bootstrap []string `toml:"bootstrap"`
	// Plaintext must be true for now: see Validate.
	Plaintext bool `toml:"plaintext"`
	// ClusterID separates clusters sharing a network; nodes of different
	// clusters never exchange data.
	ClusterID uint16 `toml:"cluster_id"`
}

// APIConfig is [api].
type APIConfig struct {
	Addr  string      `toml:"addr"`
	Authz AuthzConfig `toml:"authz"`
}

// AuthzConfig is [api.authz] (or api's "authz.bearer-token" key).
type AuthzConfig struct {
	BearerToken string `toml:"bearer-token"`
}

// AdminConfig is [admin].
type AdminConfig struct {
	Path string `toml:"path"`
}

// NewConfig returns the embedded default: a single node on loopback with its
// data in ./patina-data and the built-in schema.
func NewConfig() *Config {
	return &Config{
		Region: "local",
		DB:     DBConfig{Path: "./patina-data/state.db"},
		Gossip: GossipConfig{Addr: "127.0.0.1:8787", Plaintext: true},
		API:    APIConfig{Addr: "127.0.0.1:8080"},
		Admin:  AdminConfig{Path: "./patina-data/admin.sock"},
		Subscriptions: SubscriptionsConfig{MaxChanges: pubsub.DefaultMaxChanges, MaxAge: Duration{pubsub.DefaultMaxAge},
			IdleTimeout: Duration{pubsub.DefaultIdleTimeout}, EvalTimeout: Duration{pubsub.DefaultEvalTimeout}},
	}
}

// LoadConfig reads a TOML file over the defaults. Unknown keys are errors
// naming the key, so typos do not silently fall back to defaults.
func LoadConfig(path string) (*Config, error) {
	cfg := NewConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	md, err := toml.Decode(string(b), cfg)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("config %s: unknown key(s) %s; see patina.example.toml for the supported keys", path, strings.Join(keys, ", "))
	}
	return cfg, nil
}

// Validate checks the config, naming the key and the problem.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config key %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.DB.Path == "" {
		bad("db.path", "empty; set the SQLite file path, e.g. \"/var/lib/patina/state.db\"")
	}
	checkAddr := func(key, addr string) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			bad(key, "%q is not host:port (%v)", addr, err)
			return
		}
		if port == "" {
			bad(key, "%q has no port", addr)
		}
		if key == "gossip.addr" && (host == "" || host == "0.0.0.0" || host == "::") {
			bad(key, "%q must name the IP peers reach this node at, not a wildcard", addr)
		}
	}
	checkAddr("gossip.addr", c.Gossip.Addr)
	checkAddr("api.addr", c.API.Addr)
	for i, b := range c.Gossip.Bootstrap {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad(fmt.Sprintf("gossip.bootstrap[%d]", i), "%q is not host:port", b)
		}
	}
	if !c.Gossip.Plaintext {
		bad("gossip.plaintext", "false asks for TLS on the peer data plane, which this build does not support yet; set plaintext = true and keep gossip on a private network")
	}
	if c.Region == "" {
		bad("region", "empty; name the node's region, e.g. \"iad\"")
	}
	if c.Subscriptions.MaxChanges <= 0 {
		bad("subscriptions.max_changes", "%d; keep at least 1 change per subscription (default %d)", c.Subscriptions.MaxChanges, pubsub.DefaultMaxChanges)
	}
	for key, d := range map[string]Duration{"subscriptions.max_age": c.Subscriptions.MaxAge,
		"subscriptions.idle_timeout": c.Subscriptions.IdleTimeout, "subscriptions.eval_timeout": c.Subscriptions.EvalTimeout} {
		if d.Duration <= 0 {
			bad(key, "%v; want a positive duration like \"30s\"", d.Duration)
		}
	}
	for i, p := range c.DB.SchemaPaths {
		if _, err := os.Stat(p); err != nil {
			bad(fmt.Sprintf("db.schema_paths[%d]", i), "%v", err)
		}
	}
	return errors.Join(errs...)
}
