package testkit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
)

// Registry is a real OCI distribution registry (the one Docker Hub runs),
// served in-process on a loopback port with in-memory storage.
type Registry struct {
	Addr string // host:port, e.g. 127.0.0.1:41234
	User string // set when started with auth
	Pass string
}

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	// Auth enables htpasswd basic auth with a generated user and password.
	Auth bool
	// Listen overrides the address (default 127.0.0.1:0).
	Listen string
}

// StartRegistry starts a registry that lives until the test ends.
func StartRegistry(t T, opts RegistryOptions) *Registry {
	t.Helper()
	// The registry logs every 404 (a HEAD before each push) at error level;
	// the clients under test report real failures.
	logrus.SetLevel(logrus.FatalLevel)
	cfg := &configuration.Configuration{}
	cfg.Storage = configuration.Storage{"inmemory": configuration.Parameters{}, "delete": configuration.Parameters{"enabled": true}}
	cfg.Log.Level = "error"
	cfg.Log.AccessLog.Disabled = true
	cfg.HTTP.Secret = "berth-test"
	reg := &Registry{}
	if opts.Auth {
		reg.User, reg.Pass = "berth", "s3cret-pass"
		hash, err := bcrypt.GenerateFromPassword([]byte(reg.Pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(t.TempDir(), "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(fmt.Sprintf("%s:%s\n", reg.User, hash)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg.Auth = configuration.Auth{"htpasswd": configuration.Parameters{"realm": "berth-test", "path": htpasswd}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	listen := opts.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: app}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		cancel()
	})
	reg.Addr = l.Addr().String()
	return reg
}
