package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultsValidate(t *testing.T) {
	lim := Limits{MaxCPUs: 64, MaxMemoryMiB: 1 << 20}
	if err := Defaults().Validate(lim); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestValidationListsEveryProblem(t *testing.T) {
	s := Settings{CPUs: 0, MemoryMiB: 100, DiskGiB: 4, Driver: "hyperv", ContainerLogMiB: MaxContainerLogMiB + 1,
		SharedFolders:      []string{"relative/dir", "/definitely/not/here"},
		InsecureRegistries: []string{"http://reg:5000", "reg:99999", "10.0.0.0/8", "myreg.local:5000"},
		RegistryMirrors:    []string{"ftp://mirror", "https://mirror.example"}}
	err := s.Validate(Limits{MaxCPUs: 8, MaxMemoryMiB: 16384, Drivers: []string{"qemu", "native"}})
	var ve ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want ValidationError, got %v", err)
	}
	fields := map[string]int{}
	for _, e := range ve {
		fields[e.Field]++
	}
	want := map[string]int{"cpus": 1, "memoryMiB": 1, "diskGiB": 1, "driver": 1, "sharedFolders": 2, "insecureRegistries": 2, "registryMirrors": 1, "containerLogMiB": 1}
	for f, n := range want {
		if fields[f] != n {
			t.Errorf("%s: %d errors, want %d (%v)", f, fields[f], n, err)
		}
	}
	if !strings.Contains(err.Error(), "choose one of qemu, native") {
		t.Errorf("driver message should list the choices: %v", err)
	}
}

func TestLoadSaveRoundTrip(t *testing.T) {
	p := Paths{Home: filepath.Join(t.TempDir(), "berth")}
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	s.CPUs, s.MemoryMiB, s.InsecureRegistries = 1, 1024, []string{"registry.lan:5000"}
	lim := Limits{MaxCPUs: 64, MaxMemoryMiB: 1 << 20}
	if err := Save(p, s, lim); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p.ConfigFile())
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("settings file mode %o", fi.Mode().Perm())
	}
	got, err := Load(p)
	if err != nil || got.CPUs != 1 || got.MemoryMiB != 1024 || got.InsecureRegistries[0] != "registry.lan:5000" {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	bad := s
	bad.CPUs = 0
	if err := Save(p, bad, lim); err == nil {
		t.Fatal("invalid settings saved")
	}
	if again, _ := Load(p); again.CPUs != 1 {
		t.Fatal("a refused save changed the file")
	}
	os.WriteFile(p.ConfigFile(), []byte("{not json"), 0o600)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt file: %v", err)
	}
}

func TestProxySettings(t *testing.T) {
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("http_proxy", "http://proxy.corp:3128")
	t.Setenv("HTTPS_PROXY", "http://proxy.corp:3129")
	t.Setenv("NO_PROXY", "localhost, .corp ,10.0.0.0/8")
	d := Defaults()
	if d.HTTPProxy != "http://proxy.corp:3128" || d.HTTPSProxy != "http://proxy.corp:3129" {
		t.Fatalf("defaults from the environment: %+v", d)
	}
	if got := strings.Join(d.NoProxyList(), "|"); got != "localhost|.corp|10.0.0.0/8" {
		t.Fatalf("no-proxy list: %q", got)
	}
	lim := Limits{MaxCPUs: 64, MaxMemoryMiB: 1 << 20}
	if err := d.Validate(lim); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"proxy.corp:3128", "ftp://proxy", "http://user:pw@proxy.corp:3128", "http://p,q:1"} {
		s := d
		s.HTTPSProxy = bad
		var ve ValidationError
		if err := s.Validate(lim); !errors.As(err, &ve) || ve[0].Field != "httpsProxy" {
			t.Errorf("%q: %v", bad, err)
		}
	}
	s := d
	s.NoProxy = "good, bad host"
	if err := s.Validate(lim); err == nil || !strings.Contains(err.Error(), "noProxy") {
		t.Errorf("no-proxy with a space: %v", err)
	}
}
