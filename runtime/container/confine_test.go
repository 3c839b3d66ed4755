//go:build linux

package container

import (
	"runtime"
	"strings"
	"testing"

	ctr "github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/errdefs"
)

func TestParseSecurityOpts(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want securityOpts
		err  string
	}{
		{in: nil},
		{in: []string{"no-new-privileges"}, want: securityOpts{noNewPrivileges: true}},
		{in: []string{"no-new-privileges=false"}},
		{in: []string{"no-new-privileges:true"}, want: securityOpts{noNewPrivileges: true}},
		{in: []string{"seccomp=unconfined"}, want: securityOpts{seccomp: "unconfined"}},
		{in: []string{`seccomp={"a":"b=c"}`}, want: securityOpts{seccomp: `{"a":"b=c"}`}},
		{in: []string{"apparmor=unconfined", "label=disable", "disable", "systempaths=unconfined"}},
		{in: []string{"apparmor=docker-default"}, err: "apparmor=docker-default"},
		{in: []string{"label=level:s0"}, err: "label=level:s0"},
		{in: []string{"seccomp="}, err: "seccomp"},
		{in: []string{"no-new-privileges=perhaps"}, err: "no-new-privileges=perhaps"},
		{in: []string{"nonsense"}, err: "nonsense"},
		{in: []string{"writable-cgroups=true"}, err: "writable-cgroups"},
	} {
		got, err := parseSecurityOpts(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %+v %v, want %+v", tc.in, got, err, tc.want)
		case tc.err != "" && (!errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want an InvalidArgument naming %q", tc.in, err, tc.err)
		}
	}
}

func TestParseDeviceCgroupRule(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	for in, want := range map[string]*specs.LinuxDeviceCgroup{
		"c 1:3 rwm":   {Allow: true, Type: "c", Major: n(1), Minor: n(3), Access: "rwm"},
		"b *:* m":     {Allow: true, Type: "b", Access: "m"},
		"a 7:* r":     {Allow: true, Type: "a", Major: n(7), Access: "r"},
		"c 1:3":       nil,
		"x 1:3 r":     nil,
		"c 1:3 rwx":   nil,
		"c 1:3 rr":    nil,
		"c -1:3 r":    nil,
		"c 1 r":       nil,
		"c 1:3 r w":   nil,
		"cc 1:3 rwm":  nil,
		"":            nil,
		"c 1:3:4 rwm": nil,
	} {
		got, err := parseDeviceCgroupRule(in)
		if want == nil {
			if !errdefs.IsInvalidArgument(err) {
				t.Errorf("%q: %+v %v, want an error", in, got, err)
			}
			continue
		}
		if err != nil || got.Type != want.Type || got.Access != want.Access || !eqPtr(got.Major, want.Major) || !eqPtr(got.Minor, want.Minor) || !got.Allow {
			t.Errorf("%q: %+v %v", in, got, err)
		}
	}
}

func eqPtr(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// TestConfine: what a default, a privileged and an opted-out spec get.
func TestConfine(t *testing.T) {
	scratch := func() *specs.Spec { return &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}} }
	s := scratch()
	if err := confine(s, &ctr.HostConfig{}); err != nil {
		t.Fatal(err)
	}
	if len(s.Process.Capabilities.Bounding) != len(defaultCaps) || s.Process.NoNewPrivileges ||
		len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 {
		t.Fatalf("default: %+v %+v", s.Process, s.Linux)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || d[0].Allow {
		t.Fatalf("default device rules: %+v", d)
	}
	if SeccompEnabled {
		if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) < 10 {
			t.Fatalf("default seccomp: %+v", s.Linux.Seccomp)
		}
	} else {
		t.Log("built without -tags seccomp: the default profile is not checked (make test-go sets the tag)")
	}

	s = scratch()
	if err := confine(s, &ctr.HostConfig{Privileged: true, SecurityOpt: []string{"no-new-privileges"}}); err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || !s.Process.NoNewPrivileges || !s.Linux.Resources.Devices[0].Allow {
		t.Fatalf("privileged: %+v %+v", s.Process, s.Linux)
	}

	s = scratch()
	if err := confine(s, &ctr.HostConfig{SecurityOpt: []string{"seccomp=unconfined"}, Resources: ctr.Resources{DeviceCgroupRules: []string{"c 1:3 r"}}}); err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp != nil || len(s.Linux.Resources.Devices) != 2 {
		t.Fatalf("unconfined with a rule: %+v", s.Linux)
	}
}

// The default filter covers 64- and 32-bit x86 as dockerd's does, without
// the x32 ABI (see withoutX32).
func TestDefaultProfileArchitectures(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the x86 architectures apply on amd64")
	}
	spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}, Linux: &specs.Linux{}}
	p, err := seccompProfile("", spec)
	if err != nil {
		t.Fatal(err)
	}
	got := map[specs.Arch]bool{}
	for _, a := range p.Architectures {
		got[a] = true
	}
	if !got[specs.ArchX86_64] || !got[specs.ArchX86] || got[specs.ArchX32] {
		t.Fatalf("architectures: %v", p.Architectures)
	}
}
