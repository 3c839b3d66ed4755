package engine_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/internal/testkit"
)

// TestHostSocketPath: a container that mounts the host's name of the
// engine's socket (--host-socket-path: hostd's forwarded socket, which in
// the VM is a dead file over the share) gets the engine's own socket, and
// the docker CLI in it sees itself. Here the host path is a dead socket
// file, as the VM would see it.
func TestHostSocketPath(t *testing.T) {
	reg := testkit.StartRegistry(t, testkit.RegistryOptions{})
	cli, err := os.ReadFile(testkit.DockerCLI)
	if err != nil {
		t.Skipf("needs the docker CLI at %s: %v", testkit.DockerCLI, err)
	}
	ref := reg.Addr + "/dockercli:latest"
	testkit.Push(t, ref, testkit.ImageFromLayers(t, v1.Config{},
		testkit.LayerTar(append(testkit.BusyboxEntries(t), testkit.TarEntry{Name: "usr/local/bin/docker", Mode: 0o755, Body: cli}))))

	dir := t.TempDir()
	hostSock := filepath.Join(dir, "run", "docker.sock")
	os.MkdirAll(filepath.Dir(hostSock), 0o700)
	l, err := net.Listen("unix", hostSock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // a socket file nobody answers on
	a := testkit.StartAgent(t, testkit.AgentOptions{Args: []string{"--host-socket-path", hostSock, "--host-socket-path", "/var/run/docker.sock"}})
	d := testkit.NewDocker(t, a.Host)
	d.Must("pull", "-q", ref)

	for _, mnt := range [][]string{
		{"-v", hostSock + ":/var/run/docker.sock"},
		{"-v", "/var/run/docker.sock:/var/run/docker.sock"},
		{"--mount", "type=bind,source=" + hostSock + ",target=/var/run/docker.sock"},
	} {
		args := append([]string{"run", "--rm", "--name", "sockuser"}, mnt...)
		args = append(args, ref, "docker", "ps", "--format", "{{.Names}} {{.Image}}")
		if out := d.Must(args...); out != "sockuser "+ref+"\n" {
			t.Errorf("%v: docker ps in the container: %q", mnt, out)
		}
	}
	// Any other path is bound as it is: the dead socket stays dead.
	other := filepath.Join(dir, "other.sock")
	os.Link(hostSock, other)
	r := d.Run(nil, "run", "--rm", "-v", other+":/var/run/docker.sock", ref, "docker", "ps")
	if r.Code == 0 || !strings.Contains(r.Stderr, "connect") {
		t.Errorf("a socket path not named by --host-socket-path: %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
}
