package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// Config is local mode's configuration. Every field has an environment
// variable and a default that needs nothing installed.
type Config struct {
	Addr            string        // FORNAX_ADDR: API, webhooks and logs
	PublicURL       string        // FORNAX_PUBLIC_URL: how forges reach Addr (webhook URLs)
	DataDir         string        // FORNAX_DATA
	DocstoreURL     string        // FORNAX_DOCSTORE_URL: "mem://" or a template with {collection}
	BlobURL         string        // FORNAX_BLOB_URL
	PubsubURL       string        // FORNAX_PUBSUB_URL: "mem://" or a topic template with {topic}
	SubscriptionURL string        // FORNAX_SUBSCRIPTION_URL: subscription template with {topic}
	SecretsURL      string        // FORNAX_SECRETS_URL: "" = a local key kept in DataDir
	RegistryAddr    string        // FORNAX_REGISTRY_ADDR: the embedded registry
	APITokens       string        // FORNAX_API_TOKENS: "alice=tokenA,bob=tokenB"
	MaxBuilds       int           // FORNAX_MAX_BUILDS
	BuildTimeout    time.Duration // FORNAX_BUILD_TIMEOUT
}

// Defaults returns the configuration with nothing set.
func Defaults() Config {
	return Config{
		Addr:         "127.0.0.1:7099",
		DataDir:      ".fornax",
		DocstoreURL:  "mem://",
		PubsubURL:    "mem://",
		RegistryAddr: "127.0.0.1:7098",
		MaxBuilds:    runtime.NumCPU(),
		BuildTimeout: 30 * time.Minute,
	}
}

// FromEnv reads the configuration from the environment over the defaults.
func FromEnv() (Config, error) {
	c := Defaults()
	str := func(name string, dst *string) {
		if v := os.Getenv(name); v != "" {
			*dst = v
		}
	}
	str("FORNAX_ADDR", &c.Addr)
	str("FORNAX_PUBLIC_URL", &c.PublicURL)
	str("FORNAX_DATA", &c.DataDir)
	str("FORNAX_DOCSTORE_URL", &c.DocstoreURL)
	str("FORNAX_BLOB_URL", &c.BlobURL)
	str("FORNAX_PUBSUB_URL", &c.PubsubURL)
	str("FORNAX_SUBSCRIPTION_URL", &c.SubscriptionURL)
	str("FORNAX_SECRETS_URL", &c.SecretsURL)
	str("FORNAX_REGISTRY_ADDR", &c.RegistryAddr)
	str("FORNAX_API_TOKENS", &c.APITokens)
	if v := os.Getenv("FORNAX_MAX_BUILDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("FORNAX_MAX_BUILDS=%q: want a whole number of at least 1", v)
		}
		c.MaxBuilds = n
	}
	if v := os.Getenv("FORNAX_BUILD_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("FORNAX_BUILD_TIMEOUT=%q: want a positive duration such as 30m or 90s", v)
		}
		c.BuildTimeout = d
	}
	return c, nil
}

func (c *Config) fill() error {
	if c.DataDir == "" {
		c.DataDir = ".fornax"
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return err
	}
	c.DataDir = abs
	if c.Addr == "" {
		c.Addr = "127.0.0.1:7099"
	}
	if c.DocstoreURL == "" {
		c.DocstoreURL = "mem://"
	}
	if c.PubsubURL == "" {
		c.PubsubURL = "mem://"
	}
	if c.SubscriptionURL == "" {
		c.SubscriptionURL = c.PubsubURL
	}
	if c.BlobURL == "" {
		c.BlobURL = "file://" + filepath.Join(c.DataDir, "blobs") + "?create_dir=true"
	}
	if c.RegistryAddr == "" {
		c.RegistryAddr = "127.0.0.1:7098"
	}
	if c.MaxBuilds < 1 {
		c.MaxBuilds = runtime.NumCPU()
	}
	if c.BuildTimeout <= 0 {
		c.BuildTimeout = 30 * time.Minute
	}
	return nil
}
