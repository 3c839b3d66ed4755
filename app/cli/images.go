package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func init() { register(newImagesCommand) }

func newImagesCommand(env *Env) *cobra.Command {
	var (
		all, digests, noTrunc, quiet bool
		filterFlags                  []string
		format                       string
	)
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := client.Filters{}
			for _, kv := range filterFlags {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("bad format of filter (expected name=value): %s", kv)
				}
				f.Add(k, v)
			}
			if len(args) == 1 {
				f.Add("reference", args[0])
			}
			c, err := env.apiClient()
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := c.ImageList(cmd.Context(), client.ImageListOptions{All: all, Filters: f})
			if err != nil {
				return err
			}
			rows := imageRows(res.Items, noTrunc)
			switch {
			case quiet:
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.ID()] {
						seen[r.ID()] = true
						fmt.Fprintln(env.Stdout, r.ID())
					}
				}
				return nil
			case format != "" && format != "table":
				return renderFormat(env, format, rows)
			}
			w := tabwriter.NewWriter(env.Stdout, 10, 1, 3, ' ', 0)
			if digests {
				fmt.Fprintln(w, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE")
			} else {
				fmt.Fprintln(w, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			}
			for _, r := range rows {
				if digests {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Repository(), r.Tag(), r.Digest(), r.ID(), r.CreatedSince(), r.Size())
				} else {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Repository(), r.Tag(), r.ID(), r.CreatedSince(), r.Size())
				}
			}
			return w.Flush()
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "show all images (default hides intermediate images)")
	fl.BoolVar(&digests, "digests", false, "show digests")
	fl.StringArrayVarP(&filterFlags, "filter", "f", nil, "filter output based on conditions provided")
	fl.StringVar(&format, "format", "", "format output using a Go template (e.g. '{{.Repository}}:{{.Tag}}'), or 'table'")
	fl.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	fl.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	return cmd
}

// imageRow is one line of `images`: an image under one of its tags. Its
// methods are the fields --format templates use, as docker's are.
type imageRow struct {
	img     image.Summary
	repo    string
	tag     string
	digest  string
	noTrunc bool
}

func (r imageRow) Repository() string { return r.repo }
func (r imageRow) Tag() string        { return r.tag }
func (r imageRow) Digest() string     { return r.digest }
func (r imageRow) ID() string {
	if r.noTrunc {
		return r.img.ID
	}
	id := strings.TrimPrefix(r.img.ID, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}
func (r imageRow) CreatedSince() string {
	if r.img.Created <= 0 {
		return "N/A"
	}
	return units.HumanDuration(time.Since(time.Unix(r.img.Created, 0))) + " ago"
}
func (r imageRow) CreatedAt() string {
	return time.Unix(r.img.Created, 0).String()
}
func (r imageRow) Size() string { return units.HumanSizeWithPrecision(float64(r.img.Size), 3) }
func (r imageRow) Containers() string {
	if r.img.Containers < 0 {
		return "N/A"
	}
	return fmt.Sprint(r.img.Containers)
}

// imageRows expands summaries into rows: one per tag, "<none>" for an image
// without tags, with the digest of the same repository when there is one.
func imageRows(items []image.Summary, noTrunc bool) []imageRow {
	var rows []imageRow
	for _, img := range items {
		digests := map[string]string{} // repository → digest
		for _, d := range img.RepoDigests {
			if named, err := reference.ParseNormalizedNamed(d); err == nil {
				if c, ok := named.(reference.Canonical); ok {
					digests[reference.FamiliarName(named)] = c.Digest().String()
				}
			}
		}
		if len(img.RepoTags) == 0 {
			row := imageRow{img: img, repo: "<none>", tag: "<none>", digest: "<none>", noTrunc: noTrunc}
			for repo, d := range digests {
				row.repo, row.digest = repo, d
				break
			}
			rows = append(rows, row)
			continue
		}
		for _, t := range img.RepoTags {
			row := imageRow{img: img, repo: "<none>", tag: "<none>", digest: "<none>", noTrunc: noTrunc}
			if named, err := reference.ParseNormalizedNamed(t); err == nil {
				row.repo = reference.FamiliarName(named)
				if tagged, ok := named.(reference.Tagged); ok {
					row.tag = tagged.Tag()
				}
				if d, ok := digests[row.repo]; ok {
					row.digest = d
				}
			}
			rows = append(rows, row)
		}
	}
	return rows
}

// renderFormat prints rows with a --format template; a "table " prefix
// adds a header of the field names, aligned.
func renderFormat[T any](env *Env, format string, rows []T) error {
	table := strings.HasPrefix(format, "table ")
	format = strings.TrimPrefix(format, "table ")
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json":  formatJSON,
		"upper": strings.ToUpper, "lower": strings.ToLower, "join": strings.Join,
	}).Parse(format + "\n")
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	w := tabwriter.NewWriter(env.Stdout, 10, 1, 3, ' ', 0)
	if table {
		fmt.Fprintln(w, formatHeader(format))
	}
	for _, r := range rows {
		if err := tmpl.Execute(w, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
	}
	return w.Flush()
}

func formatJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// formatHeader turns "{{.Repository}}\t{{.ID}}" into "REPOSITORY\tIMAGE ID".
func formatHeader(format string) string {
	names := map[string]string{"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT"}
	var b strings.Builder
	rest := format
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		field := strings.TrimSpace(rest[i+2 : i+j])
		field = strings.TrimPrefix(field, ".")
		if n, ok := names[field]; ok {
			b.WriteString(n)
		} else {
			b.WriteString(strings.ToUpper(field))
		}
		rest = rest[i+j+2:]
	}
	return b.String()
}
