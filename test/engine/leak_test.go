package engine_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
)

// TestNetworkCyclesLeakNothing runs 200 create/start/rm cycles with
// published ports on the default bridge and on a user network (embedded
// DNS), then counts what the engine holds on the host: veths, its nftables
// rules, mounts, cgroups, netns mounts, descriptors and goroutines.
func TestNetworkCyclesLeakNothing(t *testing.T) {
	cycles := 200
	if testing.Short() {
		cycles = 20
	}
	e := newImageEnv(t)
	e.d.Must("pull", "-q", e.ref)
	e.d.Must("network", "create", "leaknet")
	api := e.agent.HTTPClient()
	call := func(method, path string, body any, want int) []byte {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, "http://berth"+path, rd)
		req.Header.Set("Content-Type", "application/json")
		resp, err := api.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
		}
		return out
	}
	fixed := freePort(t)
	cycle := func(i int) {
		hc := map[string]any{"PortBindings": map[string]any{"80/tcp": []map[string]string{{"HostPort": ""}}, "53/udp": []map[string]string{{"HostPort": ""}}}}
		if i%2 == 0 {
			hc = map[string]any{"NetworkMode": "leaknet", "PortBindings": map[string]any{"80/tcp": []map[string]string{{"HostPort": fmt.Sprint(fixed)}}}}
		}
		var created struct{ Id string }
		json.Unmarshal(call("POST", "/containers/create", map[string]any{"Image": e.ref, "Cmd": []string{"sleep", "30"}, "HostConfig": hc}, 201), &created)
		call("POST", "/containers/"+created.Id+"/start", nil, 204)
		if i%4 == 1 { // a default-bridge container joining a user network: its DNS server starts then
			call("POST", "/networks/leaknet/connect", map[string]any{"Container": created.Id}, 200)
		}
		call("DELETE", "/containers/"+created.Id+"?force=1", nil, 204)
	}

	root := e.agent.Root
	tag := func() string {
		sum := sha256.Sum256([]byte(filepath.Clean(filepath.Join(root, "network"))))
		return hex.EncodeToString(sum[:3])
	}()
	cgroupParent := e.agent.Args[slices.Index(e.agent.Args, "--cgroup-parent")+1]
	pid := e.agent.Pid()
	// The engine keeps one spare network ready on the default bridge (a
	// namespace "spare-*" with its veth): allowed, and nothing else.
	type counts struct{ veths, rules, mounts, cgroups, netns, spares, fds, goroutines int }
	count := func() counts {
		var c counts
		links, _ := net.Interfaces()
		for _, l := range links {
			if strings.HasPrefix(l.Name, "v"+tag) {
				c.veths++
			}
		}
		c.rules = nftRules(t, "berth-"+tag)
		c.mounts = engineMounts(pid, root)
		cg, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup/memory", cgroupParent))
		cg2, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", cgroupParent))
		for _, d := range append(cg, cg2...) {
			if d.IsDir() {
				c.cgroups++
			}
		}
		ns, _ := os.ReadDir(filepath.Join(root, "network", "netns"))
		c.netns = len(ns)
		for _, e := range ns {
			if strings.HasPrefix(e.Name(), "spare-") {
				c.spares++
			}
		}
		var info struct{ NFd, NGoroutines int }
		json.Unmarshal(call("GET", "/info", nil, 200), &info)
		c.fds, c.goroutines = info.NFd, info.NGoroutines
		return c
	}
	cycle(0)
	cycle(1)
	time.Sleep(300 * time.Millisecond)
	before := count()
	if before.rules == 0 {
		t.Fatal("no nftables rules while bridges are up: is the count wrong?")
	}
	for i := 0; i < cycles; i++ {
		cycle(i)
	}
	// Goroutines of finished requests and monitors wind down
	// asynchronously, and so do the deletions of veths.
	var after counts
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = count()
		if after.goroutines <= before.goroutines && after.fds <= before.fds && after.veths == after.spares && after.netns == after.spares || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after.spares > 1 || after.veths != after.spares || after.netns != after.spares || after.rules != before.rules ||
		after.mounts != before.mounts || after.cgroups != 0 || after.fds > before.fds || after.goroutines > before.goroutines {
		t.Fatalf("after %d cycles: %+v, before: %+v", cycles, after, before)
	}
	t.Logf("after %d cycles: %+v", cycles, after)
	l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", fixed))
	if err != nil {
		t.Fatalf("published port %d still held: %v", fixed, err)
	}
	l.Close()

	// When the engine stops, its bridges and its table go.
	e.agent.Stop()
	if n := nftRules(t, "berth-"+tag); n != 0 {
		t.Fatalf("%d nftables rules left after the engine stopped", n)
	}
	links, _ := net.Interfaces()
	for _, l := range links {
		if strings.HasPrefix(l.Name, "br-"+tag) || strings.HasPrefix(l.Name, "v"+tag) {
			t.Fatalf("%s left after the engine stopped", l.Name)
		}
	}
}

// nftRules counts the rules of the ip table name (0 if it does not exist).
func nftRules(t *testing.T, name string) int {
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name != name {
			continue
		}
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, ch := range chains {
			if ch.Table.Name != name {
				continue
			}
			rules, err := c.GetRules(tb, ch)
			if err != nil {
				t.Fatal(err)
			}
			n += len(rules)
		}
		return n
	}
	return 0
}
