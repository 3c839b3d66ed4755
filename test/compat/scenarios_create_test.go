package compat_test

import (
	"time"
)

// createCase is a container created with one Config or HostConfig field
// set, then started: the create answer (warnings, errors), what the
// container prints (cmd shows the field's effect), its exit code and its
// inspect output are compared.
type createCase struct {
	name   string
	config map[string]any
	host   map[string]any
	cmd    string // shell script; default: true
	// after runs once the container has exited (or is running, with keep)
	after func(c *C, id string)
	keep  bool // do not wait for the exit (a long-running container)
	// intentional differences, as in scenario
	intentional map[string]string
	mayAgree    bool
}

func createCases(e *env, c0 func(string) string) []createCase {
	return []createCase{
		// Config fields.
		{name: "Env", config: map[string]any{"Env": []string{"Foo", "A=b", "EMPTY="}}, cmd: `echo "A=$A Foo=${Foo-unset} EMPTY=${EMPTY-unset}"`,
			after: func(c *C, id string) { c.Value("Config.Env", c.Inspect(id).Get("Config.Env")) }},
		{name: "Entrypoint", config: map[string]any{"Entrypoint": []string{"echo", "ep"}, "Cmd": []string{"x", "y"}}},
		{name: "Entrypoint-empty", config: map[string]any{"Entrypoint": []string{}, "Cmd": []string{"echo", "no entrypoint"}}},
		{name: "WorkingDir", config: map[string]any{"WorkingDir": "/tmp/new/dir"}, cmd: "pwd; ls -ld /tmp/new/dir | cut -c1-10"},
		{name: "User", config: map[string]any{"User": "1000:1000"}, cmd: "id"},
		{name: "User-name", config: map[string]any{"User": "nobody"}, cmd: "id"},
		{name: "Hostname", config: map[string]any{"Hostname": "myhost", "Domainname": "example.com"}, cmd: "hostname; cat /etc/hostname; grep -c myhost /etc/hosts"},
		{name: "Labels", config: map[string]any{"Labels": map[string]string{"a": "1", "b": ""}}},
		{name: "StopSignal", config: map[string]any{"StopSignal": "SIGUSR1", "StopTimeout": 1}},
		{name: "Healthcheck", config: map[string]any{"Healthcheck": map[string]any{"Test": []string{"CMD-SHELL", "exit 0"}, "Interval": int64(200 * time.Millisecond), "Retries": 1}},
			cmd: "sleep 30", keep: true, after: func(c *C, id string) {
				time.Sleep(1500 * time.Millisecond)
				c.Value("health", c.Inspect(id).Get("State.Health.Status"))
			}},
		{name: "Healthcheck-none", config: map[string]any{"Image": e.rich, "Healthcheck": map[string]any{"Test": []string{"NONE"}}}},
		{name: "MacAddress", config: map[string]any{"MacAddress": "02:42:ac:11:00:99"}, cmd: "cat /sys/class/net/eth0/address",
			after: func(c *C, id string) {
				r := c.Inspect(id)
				c.Value("Config.MacAddress", r.Get("Config.MacAddress"))
			}},
		{name: "ExposedPorts", config: map[string]any{"ExposedPorts": map[string]any{"80/tcp": map[string]any{}, "53/udp": map[string]any{}}}},
		{name: "Volumes", config: map[string]any{"Volumes": map[string]any{"/vol": map[string]any{}}}, cmd: "touch /vol/x && echo ok"},
		{name: "Tty", config: map[string]any{"Tty": true}, cmd: "echo tty; tty >/dev/null && echo is-a-tty"},
		{name: "NetworkDisabled", config: map[string]any{"NetworkDisabled": true}, cmd: "ls /sys/class/net"},
		{name: "Image-rich", config: map[string]any{"Image": e.rich}, cmd: "pwd; echo $RICH; id -u"},
		{name: "Shell", config: map[string]any{"Shell": []string{"/bin/sh", "-c"}}},

		// HostConfig fields.
		{name: "Binds", host: map[string]any{"Binds": []string{e.hostDir + ":/mnt:ro", c0("vol") + ":/vol"}}, cmd: "cat /mnt/file; touch /mnt/x 2>/dev/null || echo ro; touch /vol/y && echo rw"},
		{name: "Binds-missing-source", host: map[string]any{"Binds": []string{e.hostDir + "/made/by/engine:/mnt"}}, cmd: "ls /mnt | wc -l"},
		{name: "Binds-bad", host: map[string]any{"Binds": []string{"relative/path:/mnt"}}},
		{name: "ContainerIDFile", host: map[string]any{"ContainerIDFile": ""}},
		{name: "LogConfig-json-file", host: map[string]any{"LogConfig": map[string]any{"Type": "json-file", "Config": map[string]string{"max-size": "1m", "max-file": "2"}}}, cmd: "echo logged"},
		{name: "LogConfig-max-file-alone", host: map[string]any{"LogConfig": map[string]any{"Type": "json-file", "Config": map[string]string{"max-file": "3"}}}, cmd: "echo logged"},
		{name: "LogConfig-bad-option", host: map[string]any{"LogConfig": map[string]any{"Type": "json-file", "Config": map[string]string{"no-such-opt": "1"}}}},
		{name: "LogConfig-unknown-driver", host: map[string]any{"LogConfig": map[string]any{"Type": "nosuchdriver"}}},
		{name: "LogConfig-none", host: map[string]any{"LogConfig": map[string]any{"Type": "none"}}, cmd: "echo not logged"},
		{name: "NetworkMode-none", host: map[string]any{"NetworkMode": "none"}, cmd: "ls /sys/class/net"},
		{name: "NetworkMode-host", host: map[string]any{"NetworkMode": "host"}, cmd: "test -d /sys/class/net/lo && echo host"},
		{name: "NetworkMode-default", host: map[string]any{"NetworkMode": "default"}, cmd: "ls /sys/class/net"},
		{name: "PortBindings", config: map[string]any{"ExposedPorts": map[string]any{"80/tcp": map[string]any{}}},
			host: map[string]any{"PortBindings": map[string]any{"80/tcp": []map[string]string{{"HostIp": "127.0.0.1", "HostPort": ""}}}}, cmd: "sleep 30", keep: true,
			after: func(c *C, id string) { c.Get("/containers/json?filters=%s", `{"id":["`+id+`"]}`) }},
		{name: "PublishAllPorts", config: map[string]any{"ExposedPorts": map[string]any{"80/tcp": map[string]any{}}}, host: map[string]any{"PublishAllPorts": true}, cmd: "sleep 30", keep: true},
		{name: "RestartPolicy-on-failure", host: map[string]any{"RestartPolicy": map[string]any{"Name": "on-failure", "MaximumRetryCount": 1}}, cmd: "exit 1",
			after: func(c *C, id string) {
				time.Sleep(1500 * time.Millisecond)
				r := c.Inspect(id)
				c.Value("restarts", r.Get("RestartCount"))
			}},
		{name: "RestartPolicy-unless-stopped", host: map[string]any{"RestartPolicy": map[string]any{"Name": "unless-stopped"}}, cmd: "sleep 30", keep: true,
			after: func(c *C, id string) {
				c.Post("/containers/%s/stop?t=0", id)
				c.Value("running", c.Inspect(id).Get("State.Running"))
			}},
		{name: "AutoRemove", host: map[string]any{"AutoRemove": true}, cmd: "sleep 1; echo bye", keep: true,
			after: func(c *C, id string) {
				c.Do(Req{Method: "POST", Path: "/containers/%s/wait?condition=removed", Args: []any{id}, Timeout: 20 * time.Second})
				c.Value("removed", c.Inspect(id).Status)
			}},
		{name: "VolumeDriver", host: map[string]any{"VolumeDriver": "local"}, config: map[string]any{"Volumes": map[string]any{"/v": map[string]any{}}}},
		{name: "VolumeDriver-unknown", host: map[string]any{"VolumeDriver": "nosuchdriver"}, config: map[string]any{"Volumes": map[string]any{"/v": map[string]any{}}}},
		{name: "Mounts-volume", host: map[string]any{"Mounts": []map[string]any{{"Type": "volume", "Source": c0("mvol"), "Target": "/data", "VolumeOptions": map[string]any{"NoCopy": true, "Labels": map[string]string{"x": "y"}}}}}, cmd: "ls -a /data | wc -l"},
		{name: "Mounts-bind", host: map[string]any{"Mounts": []map[string]any{{"Type": "bind", "Source": e.hostDir, "Target": "/mnt", "ReadOnly": true, "BindOptions": map[string]any{"Propagation": "rprivate"}}}}, cmd: "cat /mnt/file"},
		{name: "Mounts-bind-missing", host: map[string]any{"Mounts": []map[string]any{{"Type": "bind", "Source": e.hostDir + "/nope", "Target": "/mnt"}}}},
		{name: "Mounts-tmpfs", host: map[string]any{"Mounts": []map[string]any{{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": map[string]any{"SizeBytes": 1 << 20, "Mode": 0o700}}}}, cmd: "ls -ld /t | cut -c1-10; df -k /t | tail -1 | awk '{print $2}'"},
		{name: "Mounts-bad-type", host: map[string]any{"Mounts": []map[string]any{{"Type": "nfs", "Target": "/t"}}}},
		{name: "Mounts-duplicate", host: map[string]any{"Mounts": []map[string]any{{"Type": "tmpfs", "Target": "/t"}, {"Type": "tmpfs", "Target": "/t"}}}},
		{name: "Tmpfs", host: map[string]any{"Tmpfs": map[string]string{"/run/t": "size=1m,mode=1777"}}, cmd: "ls -ld /run/t | cut -c1-10; df -k /run/t | tail -1 | awk '{print $2}'"},
		{name: "ConsoleSize", config: map[string]any{"Tty": true}, host: map[string]any{"ConsoleSize": []int{10, 40}}, cmd: "stty size"},
		{name: "CapAdd", host: map[string]any{"CapAdd": []string{"NET_ADMIN", "CAP_SYS_TIME"}}, cmd: "grep CapEff /proc/self/status"},
		{name: "CapDrop", host: map[string]any{"CapDrop": []string{"CHOWN", "all"}, "CapAdd": []string{"KILL"}}, cmd: "grep CapEff /proc/self/status"},
		{name: "CapAdd-unknown", host: map[string]any{"CapAdd": []string{"NOT_A_CAP"}}},
		{name: "CgroupnsMode-private", host: map[string]any{"CgroupnsMode": "private"}},
		{name: "CgroupnsMode-bad", host: map[string]any{"CgroupnsMode": "sideways"}},
		{name: "Dns", host: map[string]any{"Dns": []string{"192.0.2.53"}, "DnsOptions": []string{"ndots:2"}, "DnsSearch": []string{"example.com"}}, cmd: "cat /etc/resolv.conf"},
		{name: "ExtraHosts", host: map[string]any{"ExtraHosts": []string{"myhost:192.0.2.7", "other:192.0.2.8"}}, cmd: "grep 192.0.2 /etc/hosts"},
		{name: "ExtraHosts-bad", host: map[string]any{"ExtraHosts": []string{"nocolon"}}},
		{name: "GroupAdd", host: map[string]any{"GroupAdd": []string{"1234", "user"}}, cmd: "id -G"},
		{name: "IpcMode-private", host: map[string]any{"IpcMode": "private"}, cmd: "ls /dev/shm | wc -l"},
		{name: "IpcMode-shareable", host: map[string]any{"IpcMode": "shareable"}},
		{name: "IpcMode-none", host: map[string]any{"IpcMode": "none"}, cmd: "test -d /dev/shm && echo shm || echo no-shm"},
		{name: "IpcMode-bad", intentional: map[string]string{`.`: atCreate}, host: map[string]any{"IpcMode": "nosuch"}},
		{name: "Links", host: map[string]any{"Links": []string{c0("target") + ":db"}}, cmd: "grep -cw db /etc/hosts; env | grep -c ^DB_"},
		{name: "OomScoreAdj", host: map[string]any{"OomScoreAdj": 500}, cmd: "cat /proc/self/oom_score_adj"},
		{name: "OomScoreAdj-bad", host: map[string]any{"OomScoreAdj": 5000}},
		{name: "PidMode-host", host: map[string]any{"PidMode": "host"}, cmd: "test -d /proc/1 && cat /proc/1/comm"},
		{name: "Privileged", mayAgree: true, intentional: map[string]string{
			`POST /containers/\{\}/start|POST /containers/\{\}/wait|value: exit code|GET /containers/\{\}/logs`: "a privileged container gets every capability the engine has; dockerd asks for every capability there is and fails to start where the engine lacks one (this machine has no CAP_SYS_RESOURCE)",
		}, host: map[string]any{"Privileged": true}, cmd: "grep CapEff /proc/self/status; test -e /dev/kmsg && echo devices"},
		{name: "ReadonlyRootfs", host: map[string]any{"ReadonlyRootfs": true}, cmd: "touch /x 2>/dev/null || echo read-only; touch /tmp/x 2>/dev/null || echo tmp-read-only"},
		{name: "SecurityOpt-no-new-privileges", host: map[string]any{"SecurityOpt": []string{"no-new-privileges"}}, cmd: "grep NoNewPrivs /proc/self/status"},
		{name: "SecurityOpt-seccomp-unconfined", host: map[string]any{"SecurityOpt": []string{"seccomp=unconfined"}}, cmd: "grep Seccomp: /proc/self/status"},
		{name: "SecurityOpt-apparmor", host: map[string]any{"SecurityOpt": []string{"apparmor=unconfined"}}},
		{name: "SecurityOpt-label-disable", host: map[string]any{"SecurityOpt": []string{"label=disable"}}},
		{name: "SecurityOpt-bad", intentional: map[string]string{`POST /containers/create`: current400}, host: map[string]any{"SecurityOpt": []string{"nonsense=1"}}},
		{name: "StorageOpt", host: map[string]any{"StorageOpt": map[string]string{"size": "1G"}}},
		{name: "UTSMode-host", host: map[string]any{"UTSMode": "host"}, cmd: "hostname"},
		{name: "UsernsMode-host", host: map[string]any{"UsernsMode": "host"}},
		{name: "ShmSize", host: map[string]any{"ShmSize": 1 << 20}, cmd: "df -k /dev/shm | tail -1 | awk '{print $2}'"},
		{name: "ShmSize-negative", host: map[string]any{"ShmSize": -1}},
		{name: "Sysctls", host: map[string]any{"Sysctls": map[string]string{"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}}, cmd: "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced"},
		{name: "Sysctls-not-namespaced", host: map[string]any{"Sysctls": map[string]string{"vm.swappiness": "1"}}},
		{name: "Runtime-runc", host: map[string]any{"Runtime": "runc"}, cmd: "echo runc"},
		{name: "Runtime-unknown", host: map[string]any{"Runtime": "kata"}},
		{name: "Isolation-default", host: map[string]any{"Isolation": "default"}},
		{name: "Isolation-hyperv", intentional: map[string]string{`POST /containers/create`: current400}, host: map[string]any{"Isolation": "hyperv"}},
		{name: "Init", host: map[string]any{"Init": true}, cmd: "cat /proc/1/comm"},
		{name: "MaskedPaths", host: map[string]any{"MaskedPaths": []string{"/etc/passwd"}}, cmd: "wc -c < /etc/passwd"},
		{name: "ReadonlyPaths", host: map[string]any{"ReadonlyPaths": []string{"/tmp"}}, cmd: "touch /tmp/x 2>/dev/null || echo ro"},

		// Resources.
		{name: "CpuShares", host: map[string]any{"CpuShares": 512}, cmd: "cat /sys/fs/cgroup/cpu/cpu.shares"},
		{name: "Memory", host: map[string]any{"Memory": 64 << 20}, cmd: "cat /sys/fs/cgroup/memory/memory.limit_in_bytes"},
		{name: "Memory-swap", host: map[string]any{"Memory": 64 << 20, "MemorySwap": 128 << 20, "MemoryReservation": 32 << 20, "MemorySwappiness": 10},
			cmd: "cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/memory/memory.soft_limit_in_bytes /sys/fs/cgroup/memory/memory.swappiness"},
		{name: "MemorySwap-below-memory", host: map[string]any{"Memory": 64 << 20, "MemorySwap": 32 << 20}},
		{name: "NanoCpus", host: map[string]any{"NanoCpus": 500000000}, cmd: "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us"},
		{name: "NanoCpus-and-quota", host: map[string]any{"NanoCpus": 500000000, "CpuQuota": 50000}},
		{name: "CpuQuota", host: map[string]any{"CpuPeriod": 50000, "CpuQuota": 25000}, cmd: "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us"},
		{name: "CpuRealtime", host: map[string]any{"CpuRealtimePeriod": 1000000, "CpuRealtimeRuntime": 10000}},
		{name: "CpusetCpus", host: map[string]any{"CpusetCpus": "0", "CpusetMems": "0"}, cmd: "cat /sys/fs/cgroup/cpuset/cpuset.cpus"},
		{name: "BlkioWeight", host: map[string]any{"BlkioWeight": 300}},
		{name: "BlkioDeviceReadBps", host: map[string]any{"BlkioDeviceReadBps": []map[string]any{{"Path": "/dev/vda", "Rate": 1 << 20}}, "BlkioDeviceWriteIOps": []map[string]any{{"Path": "/dev/vda", "Rate": 100}}},
			cmd: "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device"},
		{name: "Devices", host: map[string]any{"Devices": []map[string]string{{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rwm"}}}, cmd: "ls -l /dev/mynull | cut -c1-10; echo x > /dev/mynull && echo writable"},
		{name: "Devices-missing", intentional: map[string]string{`.`: atCreate}, host: map[string]any{"Devices": []map[string]string{{"PathOnHost": "/dev/nosuch", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}}}},
		{name: "DeviceCgroupRules", host: map[string]any{"DeviceCgroupRules": []string{"c 1:3 rwm"}}, cmd: "grep -c 'c 1:3 rwm' /sys/fs/cgroup/devices/devices.list"},
		{name: "DeviceCgroupRules-bad", intentional: map[string]string{`.`: atCreate}, host: map[string]any{"DeviceCgroupRules": []string{"z 1:3 rwm"}}},
		{name: "DeviceRequests-gpu", intentional: map[string]string{`.`: "device requests (--gpus) are refused at create: Berth has no device drivers; dockerd creates the container and refuses its start (no driver for the capability)"}, host: map[string]any{"DeviceRequests": []map[string]any{{"Driver": "", "Count": -1, "Capabilities": [][]string{{"gpu"}}}}}},
		{name: "KernelMemory", host: map[string]any{"KernelMemory": 64 << 20}},
		{name: "OomKillDisable", host: map[string]any{"Memory": 64 << 20, "OomKillDisable": true}, cmd: "cat /sys/fs/cgroup/memory/memory.oom_control | head -1"},
		{name: "PidsLimit", host: map[string]any{"PidsLimit": 50}, cmd: "cat /sys/fs/cgroup/pids/pids.max"},
		{name: "Ulimits", host: map[string]any{"Ulimits": []map[string]any{{"Name": "nofile", "Soft": 1024, "Hard": 2048}}}, cmd: "ulimit -n; ulimit -Hn"},
		{name: "Ulimits-bad", intentional: map[string]string{`.`: atCreate}, host: map[string]any{"Ulimits": []map[string]any{{"Name": "nosuch", "Soft": 1, "Hard": 2}}}},
		{name: "CgroupParent", host: map[string]any{"CgroupParent": "/compat-cgroup-parent"}, cmd: "echo started"},
		{name: "IOMaximumBandwidth", intentional: map[string]string{`POST /containers/create`: current400}, host: map[string]any{"IOMaximumBandwidth": 1 << 20}},
		{name: "CpuCount", intentional: map[string]string{`POST /containers/create`: "CpuCount exists on Windows only: Berth says so in a warning and discards it; dockerd ignores it without a word"}, host: map[string]any{"CpuCount": 1}},
	}
}

func init() {
	cases := createCases(&env{}, func(s string) string { return s })
	for _, cc := range cases {
		name := cc.name
		register(&scenario{name: "create/" + name, intentional: cc.intentional, mayAgree: cc.mayAgree, run: func(c *C, e *env) {
			var cc createCase
			for _, x := range createCases(e, c.Name) {
				if x.name == name {
					cc = x
				}
			}
			runCreateCase(c, e, cc)
		}})
	}
}

func runCreateCase(c *C, e *env, cc createCase) {
	cfg := map[string]any{}
	for k, v := range cc.config {
		cfg[k] = v
	}
	if _, ok := cfg["Cmd"]; !ok {
		script := cc.cmd
		if script == "" {
			script = "true"
		}
		if _, ep := cfg["Entrypoint"]; !ep {
			cfg["Cmd"] = sh(script)
		}
	}
	host := map[string]any{}
	for k, v := range cc.host {
		host[k] = v
	}
	cfg["HostConfig"] = host
	var cleanup []string
	if cc.name == "Links" {
		target := c.Create(e, "target", map[string]any{"Cmd": sh("sleep 30"), "ExposedPorts": map[string]any{"5432/tcp": map[string]any{}}})
		c.Start(target)
		cleanup = append(cleanup, target)
	}
	id := c.Create(e, "c", cfg)
	if id != "" {
		c.Start(id)
		if !cc.keep {
			c.Value("exit code", c.Wait(id))
			c.Get("/containers/%s/logs?stdout=1&stderr=1", id)
		}
		if cc.after != nil {
			cc.after(c, id)
		}
		c.Inspect(id)
		c.Remove(id)
	}
	for _, x := range cleanup {
		c.Remove(x)
	}
	c.Quiet(func() {
		c.Do(Req{Method: "POST", Path: "/volumes/prune?filters=%s", Args: []any{`{"label":["compat"]}`}})
		for _, v := range []string{"vol", "mvol"} {
			c.Delete("/volumes/%s", c.Name(v))
		}
	})
}
