package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func init() { register(newPsCommand) }

const defaultPsFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

func newPsCommand(env *Env) *cobra.Command {
	var (
		all, quiet, noTrunc, latest, size bool
		last                              int
		format                            string
		filterArgs                        []string
	)
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := env.apiClient()
			if err != nil {
				return err
			}
			defer c.Close()
			opts := client.ContainerListOptions{All: all, Limit: last, Size: size, Filters: client.Filters{}}
			if latest {
				opts.Limit = 1
			}
			for _, f := range filterArgs {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					return fmt.Errorf("bad format of filter (expected name=value)")
				}
				opts.Filters.Add(k, v)
			}
			res, err := c.ContainerList(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("%s", errorText(err))
			}
			if quiet && format == "" {
				format = "{{.ID}}"
			}
			if format == "" {
				format = defaultPsFormat
				if size {
					format += "\t{{.Size}}"
				}
			}
			return writeContainers(env.Stdout, format, res.Items, !noTrunc)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fl.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE' or a Go template)")
	fl.StringArrayVarP(&filterArgs, "filter", "f", nil, "Filter output based on conditions provided")
	return cmd
}

// writeContainers renders containers with a docker-style template: with a
// "table" prefix a header row and aligned columns, else one line each.
func writeContainers(out io.Writer, format string, items []container.Summary, trunc bool) error {
	table := false
	switch {
	case format == "table":
		format, table = defaultPsFormat[len("table "):], true
	case strings.HasPrefix(format, "table "):
		format, table = format[len("table "):], true
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err := template.New("ps").Funcs(template.FuncMap{
		"json":  func(v any) string { return fmt.Sprint(v) },
		"join":  strings.Join,
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
	}).Parse(format + "\n")
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	w := out
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
		w = tw
		if err := tmpl.Execute(w, psHeader{}); err != nil {
			return err
		}
	}
	now := time.Now()
	for _, s := range items {
		if err := tmpl.Execute(w, psRow{s: s, trunc: trunc, now: now}); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// psRow is one container as the --format template sees it (docker's
// field names).
type psRow struct {
	s     container.Summary
	trunc bool
	now   time.Time
}

func (r psRow) ID() string {
	if r.trunc && len(r.s.ID) > 12 {
		return r.s.ID[:12]
	}
	return r.s.ID
}

func (r psRow) Image() string {
	img := r.s.Image
	if strings.HasPrefix(img, "sha256:") && r.trunc && len(img) > 19 {
		return img[7:19]
	}
	return img
}

func (r psRow) Command() string {
	c := r.s.Command
	if r.trunc && len([]rune(c)) > 20 {
		c = string([]rune(c)[:19]) + "…"
	}
	return strconv.Quote(c)
}

func (r psRow) CreatedAt() string { return time.Unix(r.s.Created, 0).String() }

func (r psRow) RunningFor() string {
	return units.HumanDuration(r.now.Sub(time.Unix(r.s.Created, 0))) + " ago"
}

func (r psRow) Ports() string {
	var out []string
	for _, p := range r.s.Ports {
		if p.PublicPort != 0 {
			ip := "0.0.0.0"
			if p.IP.IsValid() {
				ip = p.IP.String()
			}
			out = append(out, fmt.Sprintf("%s:%d->%d/%s", ip, p.PublicPort, p.PrivatePort, p.Type))
			continue
		}
		out = append(out, fmt.Sprintf("%d/%s", p.PrivatePort, p.Type))
	}
	return strings.Join(out, ", ")
}

func (r psRow) State() string  { return string(r.s.State) }
func (r psRow) Status() string { return r.s.Status }

func (r psRow) Size() string {
	return units.HumanSizeWithPrecision(float64(r.s.SizeRw), 3) + " (virtual " + units.HumanSizeWithPrecision(float64(r.s.SizeRootFs), 3) + ")"
}

func (r psRow) Names() string {
	var names []string
	for _, n := range r.s.Names {
		n = strings.TrimPrefix(n, "/")
		if !strings.Contains(n, "/") { // legacy link names are hidden
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

func (r psRow) Labels() string {
	var kv []string
	for k, v := range r.s.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func (r psRow) Label(name string) string { return r.s.Labels[name] }

func (r psRow) Mounts() string {
	var out []string
	for _, m := range r.s.Mounts {
		n := m.Name
		if n == "" {
			n = m.Source
		}
		out = append(out, n)
	}
	return strings.Join(out, ",")
}

func (r psRow) Networks() string {
	if r.s.NetworkSettings == nil {
		return ""
	}
	var out []string
	for n := range r.s.NetworkSettings.Networks {
		out = append(out, n)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// psHeader gives each field its column title for table output.
type psHeader struct{}

func (psHeader) ID() string               { return "CONTAINER ID" }
func (psHeader) Image() string            { return "IMAGE" }
func (psHeader) Command() string          { return "COMMAND" }
func (psHeader) CreatedAt() string        { return "CREATED AT" }
func (psHeader) RunningFor() string       { return "CREATED" }
func (psHeader) Ports() string            { return "PORTS" }
func (psHeader) State() string            { return "STATE" }
func (psHeader) Status() string           { return "STATUS" }
func (psHeader) Size() string             { return "SIZE" }
func (psHeader) Names() string            { return "NAMES" }
func (psHeader) Labels() string           { return "LABELS" }
func (psHeader) Label(name string) string { return "LABEL" }
func (psHeader) Mounts() string           { return "MOUNTS" }
func (psHeader) Networks() string         { return "NETWORKS" }
