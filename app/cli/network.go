package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"path"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The networking, volume and housekeeping commands, with docker's names,
// flags and output: network, volume, port, cp, stats, events, system
// df/prune, container prune; and run's -p, -P, -v, --mount, --network,
// --add-host and --dns.

func init() {
	register(newNetworkCommand)
	register(newVolumeCommand)
	register(newPortCommand)
	register(newCpCommand)
	register(newStatsCommand)
	register(newEventsCommand)
	register(newSystemCommand)
	register(newContainerCommand)
}

// netFlags are run's networking and storage flags.
type netFlags struct {
	publish, volumes, mounts, addHosts, dns []string
	publishAll                              bool
	network                                 string
}

func (n *netFlags) register(fl *pflag.FlagSet) {
	fl.StringArrayVarP(&n.publish, "publish", "p", nil, "Publish a container's port(s) to the host")
	fl.BoolVarP(&n.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fl.StringArrayVarP(&n.volumes, "volume", "v", nil, "Bind mount a volume")
	fl.StringArrayVar(&n.mounts, "mount", nil, "Attach a filesystem mount to the container")
	fl.StringVar(&n.network, "network", "", "Connect a container to a network")
	fl.StringArrayVar(&n.addHosts, "add-host", nil, "Add a custom host-to-IP mapping (host:ip)")
	fl.StringArrayVar(&n.dns, "dns", nil, "Set custom DNS servers")
}

func (n *netFlags) apply(cfg *container.Config, hc *container.HostConfig) error {
	hc.PublishAllPorts = n.publishAll
	hc.NetworkMode = container.NetworkMode(n.network)
	hc.ExtraHosts = n.addHosts
	for _, d := range n.dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return fmt.Errorf("invalid argument %q for \"--dns\" flag: %w", d, err)
		}
		hc.DNS = append(hc.DNS, a)
	}
	for _, p := range n.publish {
		port, b, err := parsePublish(p)
		if err != nil {
			return err
		}
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
			cfg.ExposedPorts = network.PortSet{}
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], b)
		cfg.ExposedPorts[port] = struct{}{}
	}
	for _, v := range n.volumes {
		if parts := strings.Split(v, ":"); len(parts) == 1 && path.IsAbs(v) {
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{} // -v /path: an anonymous volume
			continue
		}
		hc.Binds = append(hc.Binds, v)
	}
	for _, m := range n.mounts {
		mt, err := parseMountFlag(m)
		if err != nil {
			return err
		}
		hc.Mounts = append(hc.Mounts, mt)
	}
	return nil
}

// parsePublish reads -p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO].
func parsePublish(s string) (network.Port, network.PortBinding, error) {
	bad := fmt.Errorf("invalid argument %q for \"-p, --publish\" flag: want [ip:][hostPort:]containerPort[/proto]", s)
	spec, proto, _ := strings.Cut(s, "/")
	if proto == "" {
		proto = "tcp"
	}
	parts := strings.Split(spec, ":")
	var b network.PortBinding
	var cport string
	switch len(parts) {
	case 1:
		cport = parts[0]
	case 2:
		b.HostPort, cport = parts[0], parts[1]
	case 3:
		if parts[0] != "" {
			ip, err := netip.ParseAddr(parts[0])
			if err != nil {
				return network.Port{}, b, bad
			}
			b.HostIP = ip
		}
		b.HostPort, cport = parts[1], parts[2]
	default:
		return network.Port{}, b, bad
	}
	p, err := network.ParsePort(cport + "/" + proto)
	if err != nil {
		return network.Port{}, b, bad
	}
	return p, b, nil
}

// parseMountFlag reads --mount type=…,source=…,target=…[,readonly].
func parseMountFlag(s string) (mount.Mount, error) {
	m := mount.Mount{Type: mount.TypeVolume}
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "type":
			m.Type = mount.Type(v)
		case "source", "src":
			m.Source = v
		case "target", "destination", "dst":
			m.Target = v
		case "readonly", "ro":
			m.ReadOnly = v == "" || v == "true" || v == "1"
		case "tmpfs-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return m, fmt.Errorf("invalid tmpfs-size %q: %w", v, err)
			}
			m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: n}
		case "volume-nocopy":
			m.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
		default:
			return m, fmt.Errorf("invalid field %q in --mount %s", k, s)
		}
	}
	return m, nil
}

// filterFlag collects --filter key=value options.
func filterFlag(fl *pflag.FlagSet, into *[]string) {
	fl.StringArrayVarP(into, "filter", "f", nil, "Filter output based on conditions provided")
}

func makeFilters(args []string) (client.Filters, error) {
	f := client.Filters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value)")
		}
		f.Add(k, v)
	}
	return f, nil
}

// printJSON prints v indented, as docker's inspect commands do.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// withClient runs fn with an engine client, turning API errors into
// docker's wording.
func withClient(env *Env, fn func(c *client.Client) error) error {
	c, err := env.apiClient()
	if err != nil {
		return err
	}
	defer c.Close()
	if err := fn(c); err != nil {
		if _, ok := err.(ExitError); ok {
			return err
		}
		return ExitError{Code: 1, Message: errorText(err)}
	}
	return nil
}

func newNetworkCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	var (
		subnet, gateway, driver string
		internal                bool
		labels, filters         []string
		quiet, force            bool
	)
	create := &cobra.Command{Use: "create [OPTIONS] NETWORK", Short: "Create a network", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(env, func(c *client.Client) error {
				opts := client.NetworkCreateOptions{Driver: driver, Internal: internal, Labels: keyValues(labels)}
				if subnet != "" {
					p, err := netip.ParsePrefix(subnet)
					if err != nil {
						return fmt.Errorf("invalid subnet %q: %w", subnet, err)
					}
					cfg := network.IPAMConfig{Subnet: p}
					if gateway != "" {
						if cfg.Gateway, err = netip.ParseAddr(gateway); err != nil {
							return fmt.Errorf("invalid gateway %q: %w", gateway, err)
						}
					}
					opts.IPAM = &network.IPAM{Config: []network.IPAMConfig{cfg}}
				}
				res, err := c.NetworkCreate(cmd.Context(), args[0], opts)
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, res.ID)
				return nil
			})
		}}
	create.Flags().StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network")
	create.Flags().StringVar(&subnet, "subnet", "", "Subnet in CIDR format that represents a network segment")
	create.Flags().StringVar(&gateway, "gateway", "", "IPv4 Gateway for the master subnet")
	create.Flags().BoolVar(&internal, "internal", false, "Restrict external access to the network")
	create.Flags().StringArrayVar(&labels, "label", nil, "Set metadata on a network")

	ls := &cobra.Command{Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List networks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(env, func(c *client.Client) error {
				f, err := makeFilters(filters)
				if err != nil {
					return err
				}
				res, err := c.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: f})
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 3, ' ', 0)
				if !quiet {
					fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE")
				}
				for _, n := range res.Items {
					if quiet {
						fmt.Fprintln(tw, n.ID[:12])
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.ID[:12], n.Name, n.Driver, n.Scope)
				}
				return tw.Flush()
			})
		}}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	filterFlag(ls.Flags(), &filters)

	inspect := &cobra.Command{Use: "inspect NETWORK [NETWORK...]", Short: "Display detailed information on one or more networks", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(env, func(c *client.Client) error {
				var out []network.Inspect
				for _, a := range args {
					res, err := c.NetworkInspect(cmd.Context(), a, client.NetworkInspectOptions{})
					if err != nil {
						return err
					}
					out = append(out, res.Network)
				}
				return printJSON(env.Stdout, out)
			})
		}}
	rm := &cobra.Command{Use: "rm NETWORK [NETWORK...]", Aliases: []string{"remove"}, Short: "Remove one or more networks", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(env, args, func(c *client.Client, ref string) error {
				_, err := c.NetworkRemove(cmd.Context(), ref, client.NetworkRemoveOptions{})
				return err
			})
		}}
	var aliases []string
	connect := &cobra.Command{Use: "connect [OPTIONS] NETWORK CONTAINER", Short: "Connect a container to a network", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(env, func(c *client.Client) error {
				_, err := c.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1],
					EndpointConfig: &network.EndpointSettings{Aliases: aliases}})
				return err
			})
		}}
	connect.Flags().StringArrayVar(&aliases, "alias", nil, "Add network-scoped alias for the container")
	disconnect := &cobra.Command{Use: "disconnect [OPTIONS] NETWORK CONTAINER", Short: "Disconnect a container from a network", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(env, func(c *client.Client) error {
				_, err := c.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
				return err
			})
		}}
	disconnect.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	prune := &cobra.Command{Use: "prune [OPTIONS]", Short: "Remove all unused networks", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(env, func(c *client.Client) error {
				res, err := c.NetworkPrune(cmd.Context(), client.NetworkPruneOptions{})
				if err != nil {
					return err
				}
				printDeleted(env.Stdout, "Deleted Networks:", res.Report.NetworksDeleted, -1)
				return nil
			})
		}}
	prune.Flags().BoolP("force", "f", false, "Do not prompt for confirmation")
	cmd.AddCommand(create, ls, inspect, rm, connect, disconnect, prune)
	return cmd
}

// printDeleted prints a prune report; space < 0 omits the reclaimed line.
func printDeleted(w io.Writer, title string, names []string, space int64) {
	if len(names) > 0 {
		fmt.Fprintln(w, title)
		for _, n := range names {
			fmt.Fprintln(w, n)
		}
		fmt.Fprintln(w)
	}
	if space >= 0 {
		fmt.Fprintf(w, "Total reclaimed space: %s\n", units.HumanSize(float64(space)))
	}
}

func keyValues(list []string) map[string]string {
	out := map[string]string{}
	for _, kv := range list {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

func newVolumeCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	var (
		labels, filters   []string
		quiet, force, all bool
	)
	create := &cobra.Command{Use: "create [OPTIONS] [VOLUME]", Short: "Create a volume", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(env, func(c *client.Client) error {
				opts := client.VolumeCreateOptions{Labels: keyValues(labels)}
				if len(args) == 1 {
					opts.Name = args[0]
				}
				res, err := c.VolumeCreate(cmd.Context(), opts)
				if err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, res.Volume.Name)
				return nil
			})
		}}
	create.Flags().StringArrayVar(&labels, "label", nil, "Set metadata for a volume")
	ls := &cobra.Command{Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List volumes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(env, func(c *client.Client) error {
				f, err := makeFilters(filters)
				if err != nil {
					return err
				}
				res, err := c.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: f})
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 5, ' ', 0)
				if !quiet {
					fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
				}
				for _, v := range res.Items {
					if quiet {
						fmt.Fprintln(tw, v.Name)
					} else {
						fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
					}
				}
				return tw.Flush()
			})
		}}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	filterFlag(ls.Flags(), &filters)
	inspect := &cobra.Command{Use: "inspect VOLUME [VOLUME...]", Short: "Display detailed information on one or more volumes", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(env, func(c *client.Client) error {
				var out []any
				for _, a := range args {
					res, err := c.VolumeInspect(cmd.Context(), a, client.VolumeInspectOptions{})
					if err != nil {
						return err
					}
					out = append(out, res.Volume)
				}
				return printJSON(env.Stdout, out)
			})
		}}
	rm := &cobra.Command{Use: "rm [OPTIONS] VOLUME [VOLUME...]", Aliases: []string{"remove"}, Short: "Remove one or more volumes", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(env, args, func(c *client.Client, ref string) error {
				_, err := c.VolumeRemove(cmd.Context(), ref, client.VolumeRemoveOptions{Force: force})
				return err
			})
		}}
	rm.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	prune := &cobra.Command{Use: "prune [OPTIONS]", Short: "Remove unused local volumes", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(env, func(c *client.Client) error {
				res, err := c.VolumePrune(cmd.Context(), client.VolumePruneOptions{All: all})
				if err != nil {
					return err
				}
				printDeleted(env.Stdout, "Deleted Volumes:", res.Report.VolumesDeleted, int64(res.Report.SpaceReclaimed))
				return nil
			})
		}}
	prune.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	prune.Flags().BoolP("force", "f", false, "Do not prompt for confirmation")
	cmd.AddCommand(create, ls, inspect, rm, prune)
	return cmd
}

func newPortCommand(env *Env) *cobra.Command {
	return &cobra.Command{Use: "port CONTAINER [PRIVATE_PORT[/PROTO]]", Short: "List port mappings or a specific mapping for the container",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(env, func(c *client.Client) error {
				res, err := c.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
				if err != nil {
					return err
				}
				ports := res.Container.NetworkSettings.Ports
				var keys []network.Port
				for p := range ports {
					keys = append(keys, p)
				}
				sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
				var want network.Port
				if len(args) == 2 {
					spec := args[1]
					if !strings.Contains(spec, "/") {
						spec += "/tcp"
					}
					if want, err = network.ParsePort(spec); err != nil {
						return fmt.Errorf("invalid port %q", args[1])
					}
				}
				found := false
				for _, p := range keys {
					if want.IsValid() && p != want {
						continue
					}
					for _, b := range ports[p] {
						found = true
						ip := "0.0.0.0"
						if b.HostIP.IsValid() {
							ip = b.HostIP.String()
						}
						if want.IsValid() {
							fmt.Fprintf(env.Stdout, "%s:%s\n", ip, b.HostPort)
						} else {
							fmt.Fprintf(env.Stdout, "%s -> %s:%s\n", p, ip, b.HostPort)
						}
					}
				}
				if want.IsValid() && !found {
					return fmt.Errorf("no public port '%s' published for %s", want, args[0])
				}
				return nil
			})
		}}
}

// newCpCommand copies between a container and this host, both ways, as
// tar archives (the engine resolves paths inside the container).
func newCpCommand(env *Env) *cobra.Command {
	return &cobra.Command{Use: "cp CONTAINER:SRC_PATH DEST_PATH | SRC_PATH CONTAINER:DEST_PATH", Short: "Copy files/folders between a container and the local filesystem",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(env, func(c *client.Client) error {
				if ctr, p, ok := strings.Cut(args[0], ":"); ok && !strings.HasPrefix(args[0], "/") && !strings.HasPrefix(args[0], ".") {
					res, err := c.CopyFromContainer(cmd.Context(), ctr, client.CopyFromContainerOptions{SourcePath: p})
					if err != nil {
						return err
					}
					defer res.Content.Close()
					return untarTo(res.Content, res.Stat.Name, args[1])
				}
				ctr, p, ok := strings.Cut(args[1], ":")
				if !ok {
					return fmt.Errorf("one of the paths must name a container: CONTAINER:PATH")
				}
				pr, pw := io.Pipe()
				go func() { pw.CloseWithError(tarPath(pw, args[0])) }()
				_, err := c.CopyToContainer(cmd.Context(), ctr, client.CopyToContainerOptions{DestinationPath: p, Content: pr})
				pr.Close()
				return err
			})
		}}
}

func newStatsCommand(env *Env) *cobra.Command {
	var noStream bool
	cmd := &cobra.Command{Use: "stats [OPTIONS] CONTAINER [CONTAINER...]", Short: "Display a live stream of container(s) resource usage statistics",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withClient(env, func(c *client.Client) error {
				for {
					tw := tabwriter.NewWriter(env.Stdout, 0, 4, 3, ' ', 0)
					fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS")
					for _, ref := range args {
						res, err := c.ContainerStats(cmd.Context(), ref, client.ContainerStatsOptions{Stream: false})
						if err != nil {
							return err
						}
						var s container.StatsResponse
						err = json.NewDecoder(res.Body).Decode(&s)
						res.Body.Close()
						if err != nil {
							return err
						}
						fmt.Fprintln(tw, statsLine(s))
					}
					tw.Flush()
					if noStream {
						return nil
					}
				}
			})
		}}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	return cmd
}

// statsLine formats one sample as docker stats does.
func statsLine(s container.StatsResponse) string {
	cpu := 0.0
	if d, sys := float64(s.CPUStats.CPUUsage.TotalUsage)-float64(s.PreCPUStats.CPUUsage.TotalUsage),
		float64(s.CPUStats.SystemUsage)-float64(s.PreCPUStats.SystemUsage); d > 0 && sys > 0 {
		cpu = d / sys * float64(s.CPUStats.OnlineCPUs) * 100
	}
	mem := s.MemoryStats.Usage
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && v < mem {
		mem -= v
	} else if v, ok := s.MemoryStats.Stats["inactive_file"]; ok && v < mem {
		mem -= v
	}
	memPct := 0.0
	if s.MemoryStats.Limit > 0 {
		memPct = float64(mem) / float64(s.MemoryStats.Limit) * 100
	}
	var rx, tx, rd, wr uint64
	for _, n := range s.Networks {
		rx, tx = rx+n.RxBytes, tx+n.TxBytes
	}
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(b.Op) {
		case "read":
			rd += b.Value
		case "write":
			wr += b.Value
		}
	}
	id := s.ID
	if len(id) > 12 {
		id = id[:12]
	}
	return fmt.Sprintf("%s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%s / %s\t%s / %s\t%d", id, strings.TrimPrefix(s.Name, "/"), cpu,
		units.BytesSize(float64(mem)), units.BytesSize(float64(s.MemoryStats.Limit)), memPct,
		units.HumanSizeWithPrecision(float64(rx), 3), units.HumanSizeWithPrecision(float64(tx), 3),
		units.HumanSizeWithPrecision(float64(rd), 3), units.HumanSizeWithPrecision(float64(wr), 3), s.PidsStats.Current)
}

func newEventsCommand(env *Env) *cobra.Command {
	var since, until string
	var filters []string
	cmd := &cobra.Command{Use: "events [OPTIONS]", Short: "Get real time events from the server", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(env, func(c *client.Client) error {
				f, err := makeFilters(filters)
				if err != nil {
					return err
				}
				res := c.Events(cmd.Context(), client.EventsListOptions{Since: since, Until: until, Filters: f})
				for {
					select {
					case m, ok := <-res.Messages:
						if !ok {
							return nil
						}
						attrs := make([]string, 0, len(m.Actor.Attributes))
						for k, v := range m.Actor.Attributes {
							attrs = append(attrs, k+"="+v)
						}
						sort.Strings(attrs)
						fmt.Fprintf(env.Stdout, "%s %s %s %s (%s)\n", time.Unix(0, m.TimeNano).Format(time.RFC3339Nano), m.Type, m.Action, m.Actor.ID, strings.Join(attrs, ", "))
					case err := <-res.Err:
						if err == io.EOF {
							return nil
						}
						return err
					}
				}
			})
		}}
	cmd.Flags().StringVar(&since, "since", "", "Show all events created since timestamp")
	cmd.Flags().StringVar(&until, "until", "", "Stream events until this timestamp")
	filterFlag(cmd.Flags(), &filters)
	return cmd
}

func newSystemCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage the engine's disk use"}
	df := &cobra.Command{Use: "df", Short: "Show docker disk usage", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(env, func(c *client.Client) error {
				res, err := c.DiskUsage(cmd.Context(), client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true})
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 3, ' ', 0)
				fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
				row := func(name string, total, active, size, reclaim int64) {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", name, total, active, units.HumanSize(float64(size)), units.HumanSize(float64(reclaim)))
				}
				row("Images", res.Images.TotalCount, res.Images.ActiveCount, res.Images.TotalSize, res.Images.Reclaimable)
				row("Containers", res.Containers.TotalCount, res.Containers.ActiveCount, res.Containers.TotalSize, res.Containers.Reclaimable)
				row("Local Volumes", res.Volumes.TotalCount, res.Volumes.ActiveCount, res.Volumes.TotalSize, res.Volumes.Reclaimable)
				row("Build Cache", res.BuildCache.TotalCount, res.BuildCache.ActiveCount, res.BuildCache.TotalSize, res.BuildCache.Reclaimable)
				return tw.Flush()
			})
		}}
	var volumes bool
	prune := &cobra.Command{Use: "prune [OPTIONS]", Short: "Remove unused data", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(env, func(c *client.Client) error {
				ctx := cmd.Context()
				cr, err := c.ContainerPrune(ctx, client.ContainerPruneOptions{})
				if err != nil {
					return err
				}
				printDeleted(env.Stdout, "Deleted Containers:", cr.Report.ContainersDeleted, -1)
				nr, err := c.NetworkPrune(ctx, client.NetworkPruneOptions{})
				if err != nil {
					return err
				}
				printDeleted(env.Stdout, "Deleted Networks:", nr.Report.NetworksDeleted, -1)
				space := int64(cr.Report.SpaceReclaimed)
				if volumes {
					vr, err := c.VolumePrune(ctx, client.VolumePruneOptions{})
					if err != nil {
						return err
					}
					printDeleted(env.Stdout, "Deleted Volumes:", vr.Report.VolumesDeleted, -1)
					space += int64(vr.Report.SpaceReclaimed)
				}
				ir, err := c.ImagePrune(ctx, client.ImagePruneOptions{})
				if err != nil {
					return err
				}
				space += int64(ir.Report.SpaceReclaimed)
				fmt.Fprintf(env.Stdout, "Total reclaimed space: %s\n", units.HumanSize(float64(space)))
				return nil
			})
		}}
	prune.Flags().BoolVar(&volumes, "volumes", false, "Prune anonymous volumes")
	prune.Flags().BoolP("force", "f", false, "Do not prompt for confirmation")
	cmd.AddCommand(df, prune)
	return cmd
}

// newContainerCommand holds `container prune` (the other container
// commands are top-level in berth).
func newContainerCommand(env *Env) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers"}
	prune := &cobra.Command{Use: "prune [OPTIONS]", Short: "Remove all stopped containers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(env, func(c *client.Client) error {
				res, err := c.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{})
				if err != nil {
					return err
				}
				printDeleted(env.Stdout, "Deleted Containers:", res.Report.ContainersDeleted, int64(res.Report.SpaceReclaimed))
				return nil
			})
		}}
	prune.Flags().BoolP("force", "f", false, "Do not prompt for confirmation")
	cmd.AddCommand(prune)
	return cmd
}
