package hubclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/skiffhq/skiff/internal/atomicfile"
)

// ConfigEnv names the environment variable overriding the hubs.json path.
const ConfigEnv = "SKIFF_HUBS_FILE"

// Login is a stored hub login, with how the hub was reached when logging
// in: later commands that name the hub without a scheme or TLS flags
// reach it the same way. Entries written before these fields existed
// read with them empty.
type Login struct {
	Username string    `json:"username"`
	Token    string    `json:"token"`
	Expires  time.Time `json:"expires"`
	// Scheme is "https" or "http" when the login's address had one.
	Scheme string `json:"scheme,omitempty"`
	// CAFile is the absolute path of the PEM CA bundle trusted for the hub.
	CAFile string `json:"caFile,omitempty"`
	// Insecure: TLS verification is skipped for the hub.
	Insecure bool `json:"insecure,omitempty"`
}

// Config is hubs.json: the logins, by hub host[:port].
type Config struct {
	Hubs map[string]Login `json:"hubs"`
}

// DefaultConfigPath returns $SKIFF_HUBS_FILE, else skiff/hubs.json in the
// user configuration directory ($XDG_CONFIG_HOME or ~/.config on Linux).
func DefaultConfigPath() (string, error) {
	if p := os.Getenv(ConfigEnv); p != "" {
		return p, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding hubs.json: %w: set %s", err, ConfigEnv)
	}
	return filepath.Join(d, "skiff", "hubs.json"), nil
}

// LoadConfig reads hubs.json; a missing file is an empty Config.
func LoadConfig(path string) (*Config, error) {
	c := &Config{Hubs: map[string]Login{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("reading %s: %w: fix or remove the file and log in again", path, err)
	}
	if c.Hubs == nil {
		c.Hubs = map[string]Login{}
	}
	return c, nil
}

// Save writes hubs.json atomically with mode 0600.
func (c *Config) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// Hosts lists the hubs logged in to.
func (c *Config) Hosts() []string {
	var hs []string
	for h := range c.Hubs {
		hs = append(hs, h)
	}
	sort.Strings(hs)
	return hs
}
