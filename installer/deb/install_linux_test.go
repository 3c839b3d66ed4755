package deb

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/installer/dockercli"
	"github.com/berth-dev/berth/internal/testkit"
)

// binaries finds what make build and make desktop made.
func binaries(t *testing.T) (bin, guest string) {
	bin = os.Getenv("BERTH_BIN")
	if bin == "" {
		bin = filepath.Join(testkit.RepoRoot(), "bin")
	}
	guest = filepath.Join(testkit.RepoRoot(), "build", "guest", "out", runtime.GOARCH)
	for _, f := range []string{filepath.Join(bin, "berth"), filepath.Join(bin, "berth-desktop"), filepath.Join(guest, "initrd.img")} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (make build desktop guest)", f)
		}
	}
	return bin, guest
}

// TestInstallPurge installs the package into a clean Debian 12 root (its
// dependencies from Debian's mirror, nothing else), runs berth there, checks
// that berth-desktop finds every library it links, and purges it: the
// root's files are then exactly what they were before.
func TestInstallPurge(t *testing.T) {
	testkit.RequireRoot(t)
	bin, guest := binaries(t)
	tools := t.TempDir()
	if err := dockercli.BuildAll(dockercli.DefaultCache(), "linux", runtime.GOARCH, tools, t.Logf); err != nil {
		t.Fatal(err)
	}
	deb, err := Build(Options{Version: "v1.2.3-4-gabc1234", Arch: runtime.GOARCH, Bin: bin, Guest: guest,
		Icon: filepath.Join(testkit.RepoRoot(), "build", "appicon.png"), Docker: tools, Out: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(deb)
	t.Logf("%s: %d MiB", filepath.Base(deb), fi.Size()>>20)

	root := cleanRoot(t, Depends(runtime.GOARCH))
	chroot := func(args ...string) (string, error) {
		cmd := exec.Command("chroot", append([]string{root}, args...)...)
		// DOCKER_CONFIG in /tmp: the docker CLI may write its config
		// directory, which is not the package's to leave behind.
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive",
			"DOCKER_CONFIG=/tmp/docker-config"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := chroot(args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	before := fileList(t, root)
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp", "berth.deb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	must("dpkg", "-i", "/tmp/berth.deb")

	if v := must("dpkg-query", "-W", "-f", "${Version} ${Status}", "berth"); v != "1.2.3+4.gabc1234 install ok installed" {
		t.Errorf("dpkg-query: %q", v)
	}
	out := must("berth", "version", "--client")
	if !strings.Contains(out, "Client:") || !strings.Contains(out, "linux/"+runtime.GOARCH) {
		t.Errorf("berth version --client:\n%s", out)
	}
	if out := must("ldd", "/usr/bin/berth-desktop"); strings.Contains(out, "not found") {
		t.Errorf("berth-desktop misses libraries the package does not depend on:\n%s", out)
	}
	// A docker command out of the box: the CLI with buildx and compose.
	if out := must("docker", "--version"); !strings.Contains(out, strings.TrimPrefix(dockercli.CLIVersion, "v")) {
		t.Errorf("docker --version: %s", out)
	}
	if out := must("docker", "compose", "version"); !strings.Contains(out, dockercli.ComposeVersion) {
		t.Errorf("docker compose version: %s", out)
	}
	if out := must("docker", "buildx", "version"); !strings.Contains(out, dockercli.BuildxVersion) {
		t.Errorf("docker buildx version: %s", out)
	}
	// berth's completions, where each shell looks for them.
	for p, want := range map[string]string{"/usr/share/bash-completion/completions/berth": "__start_berth",
		"/usr/share/zsh/vendor-completions/_berth": "#compdef berth", "/usr/share/fish/vendor_completions.d/berth.fish": "complete -c berth"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s: %v (want %q in it)", p, err, want)
		}
	}
	if out := must("bash", "-c", "source /usr/share/bash-completion/completions/berth && complete -p berth"); !strings.Contains(out, "__start_berth") {
		t.Errorf("bash completion not registered: %s", out)
	}
	files := must("dpkg", "-L", "berth")
	for _, want := range []string{"/usr/bin/berth", "/usr/bin/berth-desktop", "/usr/share/applications/berth.desktop",
		"/usr/share/icons/hicolor/256x256/apps/berth.png", "/usr/share/berth/guest/" + runtime.GOARCH + "/initrd.img",
		"/usr/share/berth/guest/" + runtime.GOARCH + "/system.img",
		"/usr/share/berth/guest/" + runtime.GOARCH + "/vmlinuz", "/usr/share/berth/guest/" + runtime.GOARCH + "/manifest.json"} {
		if !strings.Contains(files, want+"\n") {
			t.Errorf("dpkg -L berth lacks %s", want)
		}
	}
	// hostd finds the guest image where the package puts it (next to the
	// binary: ../share/berth/guest/ARCH).
	if _, err := os.Stat(filepath.Join(root, "usr/bin/../share/berth/guest", runtime.GOARCH, "vmlinuz")); err != nil {
		t.Error(err)
	}

	must("dpkg", "--purge", "berth")
	after := fileList(t, root)
	var added, removed, changed []string
	for p, m := range after {
		if bm, ok := before[p]; !ok {
			added = append(added, p)
		} else if bm != m {
			changed = append(changed, p+" "+bm+" → "+m)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			removed = append(removed, p)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	if len(added)+len(removed)+len(changed) > 0 {
		t.Errorf("purge left the root different: added %v, removed %v, changed %v", added, removed, changed)
	}
	t.Logf("install and purge: %d files before and after", len(before))

	// A docker CLI the user has stays theirs; the plugins they lack come.
	userDocker := "#!/bin/sh\necho \"the user's docker\"\n"
	if err := os.WriteFile(filepath.Join(root, "usr/bin/docker"), []byte(userDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	must("dpkg", "-i", "/tmp/berth.deb")
	if b, _ := os.ReadFile(filepath.Join(root, "usr/bin/docker")); string(b) != userDocker {
		t.Errorf("the install replaced the user's docker: %q", b)
	}
	if out := must("docker"); out != "the user's docker\n" {
		t.Errorf("docker runs %q", out)
	}
	if l, err := os.Readlink(filepath.Join(root, "usr/libexec/docker/cli-plugins/docker-compose")); err != nil || !strings.Contains(l, "alternatives") {
		t.Errorf("docker-compose plugin for the user's docker: %q %v", l, err)
	}
	must("dpkg", "--purge", "berth")
	if b, _ := os.ReadFile(filepath.Join(root, "usr/bin/docker")); string(b) != userDocker {
		t.Errorf("the purge touched the user's docker: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(root, "usr/libexec/docker/cli-plugins/docker-compose")); err == nil {
		t.Error("the purge left the docker-compose plugin")
	}
}
