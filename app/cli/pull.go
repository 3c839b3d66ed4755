package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func init() { register(newPullCommand) }

func newPullCommand(env *Env) *cobra.Command {
	var (
		platform string
		quiet    bool
		allTags  bool
	)
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if allTags {
				return fmt.Errorf("--all-tags is not supported by Berth: name the tag to pull")
			}
			named, err := reference.ParseNormalizedNamed(args[0])
			if err != nil {
				return fmt.Errorf("invalid reference format: %q", args[0])
			}
			if reference.IsNameOnly(named) && !quiet {
				fmt.Fprintln(env.Stdout, "Using default tag: latest")
			}
			named = reference.TagNameOnly(named)
			c, err := env.apiClient()
			if err != nil {
				return err
			}
			defer c.Close()
			out := env.Stdout
			if quiet {
				out = io.Discard
			}
			if err := pullImage(cmd.Context(), env, c, named.String(), platform, out); err != nil {
				return err
			}
			fmt.Fprintln(env.Stdout, named.String())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&platform, "platform", env.Getenv("DOCKER_DEFAULT_PLATFORM"), "set platform if server is multi-platform capable")
	f.BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	f.BoolVarP(&allTags, "all-tags", "a", false, "download all tagged images in the repository (not supported)")
	f.Bool("disable-content-trust", true, "skip image verification (always)")
	f.MarkHidden("disable-content-trust")
	return cmd
}

// pullImage pulls ref through the engine, drawing docker's progress on out
// (bars when out is a terminal). Commands that pull on demand (run, create)
// use it too. Credentials come from the docker CLI's config file.
func pullImage(ctx context.Context, env *Env, c *client.Client, ref, platform string, out io.Writer) error {
	opts := client.ImagePullOptions{RegistryAuth: registryAuth(env, ref)}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	resp, err := c.ImagePull(ctx, ref, opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	return jsonmessage.DisplayStream(resp, out)
}

func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// registryAuth returns the X-Registry-Auth value for ref's registry from the
// docker CLI's config ($DOCKER_CONFIG/config.json or ~/.docker/config.json),
// as `docker login` stored it; "" when there is none. Credential helpers are
// not consulted.
func registryAuth(env *Env, ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	dir := env.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".docker")
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return ""
	}
	var cfg struct {
		Auths map[string]registry.AuthConfig `json:"auths"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return ""
	}
	host := reference.Domain(named)
	keys := []string{host, "https://" + host, "http://" + host}
	if host == "docker.io" {
		keys = append(keys, "https://index.docker.io/v1/", "index.docker.io")
	}
	for _, k := range keys {
		ac, ok := cfg.Auths[k]
		if !ok {
			continue
		}
		if ac.Auth != "" && ac.Username == "" {
			if raw, err := base64.StdEncoding.DecodeString(ac.Auth); err == nil {
				ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
				ac.Auth = ""
			}
		}
		ac.ServerAddress = k
		enc, err := json.Marshal(ac)
		if err != nil {
			return ""
		}
		return base64.URLEncoding.EncodeToString(enc)
	}
	return ""
}
