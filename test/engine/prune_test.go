package engine_test

import (
	"strings"
	"testing"
	"time"
)

func TestSystemDfPruneAndNetworkEvents(t *testing.T) {
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	e.d.Must("network", "create", "--label", "team=a", "evnet")
	e.d.Must("run", "--name", "done1", "--network", "evnet", e.ref, "true")
	e.d.Must("run", "--name", "done2", "-v", "/anon", e.ref, "true")
	e.d.Must("run", "-d", "--name", "alive", e.ref, "sleep", "60")
	e.d.Must("volume", "create", "named")

	df := e.d.Must("system", "df")
	mustContain(t, "system df", df, "Images", "Containers", "Local Volumes", "Build Cache")
	if !strings.Contains(df, "Containers      3         1") {
		t.Errorf("system df containers line:\n%s", df)
	}

	out := e.d.Must("container", "prune", "-f")
	mustContain(t, "container prune", out, "Deleted Containers:", "Total reclaimed space")
	if ps := e.d.Must("ps", "-a", "--format", "{{.Names}}"); ps != "alive\n" {
		t.Fatalf("after container prune: %q", ps)
	}
	out = e.d.Must("system", "prune", "-f", "--volumes")
	mustContain(t, "system prune", out, "Deleted Networks:", "evnet", "Deleted Volumes:")
	if vols := e.d.Must("volume", "ls", "-q"); vols != "named\n" {
		t.Fatalf("system prune --volumes kept %q (only the named volume should stay)", vols)
	}
	if nets := e.d.Must("network", "ls", "--format", "{{.Name}}"); strings.Contains(nets, "evnet") {
		t.Fatalf("network not pruned:\n%s", nets)
	}
	until := time.Now().Add(time.Second).Format(time.RFC3339Nano)
	ev := e.d.Must("events", "--since", since, "--until", until, "--filter", "type=network", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	mustContain(t, "network events", ev, "create evnet\n", "connect evnet\n", "disconnect evnet\n", "destroy evnet\n")
	ev = e.d.Must("events", "--since", since, "--until", until, "--filter", "type=volume", "--filter", "event=create", "--format", "{{.Action}} {{.Actor.ID}}")
	mustContain(t, "volume events", ev, "create named\n")
	e.d.Must("rm", "-f", "alive")
}
