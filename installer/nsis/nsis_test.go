package nsis

import (
	"bytes"
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tc-hib/winres"

	"github.com/berth-dev/berth/installer/dockercli"
	"github.com/berth-dev/berth/internal/testkit"
)

func TestFileVersion(t *testing.T) {
	for in, want := range map[string]string{"v1.2.3": "1.2.3.0", "v1.2.3-4-gabc": "1.2.3.0", "2.0": "2.0.0.0", "90e77e7": "90.0.0.0", "dev": "0.0.0.0"} {
		if got := FileVersion(in); got != want {
			t.Errorf("FileVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestInstaller builds the Windows installer from what make cross and make
// guest made, and checks it is a Windows executable carrying the NSIS
// archive, whose PE structure osslsigncode reads (it is unsigned).
func TestInstaller(t *testing.T) {
	for _, tool := range []string{"makensis", "osslsigncode"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (Debian: nsis, osslsigncode)", tool)
		}
	}
	root := testkit.RepoRoot()
	bin := filepath.Join(root, "bin", "windows")
	guest := filepath.Join(root, "build", "guest", "out", "amd64")
	for _, f := range []string{filepath.Join(bin, "berth.exe"), filepath.Join(bin, "berth-desktop.exe"), filepath.Join(guest, "wsl-rootfs.tar.gz")} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (make cross guest)", f)
		}
	}
	tools := t.TempDir()
	if err := dockercli.BuildAll(dockercli.DefaultCache(), "windows", "amd64", tools, t.Logf); err != nil {
		t.Fatal(err)
	}
	o := Options{Version: "v1.2.3-4-gabc1234", Bin: bin, Guest: guest, Docker: tools, Out: t.TempDir(), Compressor: "zlib"}
	if ico := filepath.Join(bin, "berth.ico"); fileExists(ico) {
		o.Icon = ico // make cross made it: the installer shows Berth's icon
	}
	exe, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(exe)
	t.Logf("%s: %d MiB", filepath.Base(exe), fi.Size()>>20)

	f, err := pe.Open(exe)
	if err != nil {
		t.Fatalf("not a PE file: %v", err)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader32)
	f.Close()
	if !ok || oh.Subsystem != pe.IMAGE_SUBSYSTEM_WINDOWS_GUI {
		t.Fatalf("want a 32-bit GUI executable (NSIS's stub), got %T", f.OptionalHeader)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("NullsoftInst")) {
		t.Error("no NSIS archive in the installer")
	}

	out, _ := exec.Command("osslsigncode", "verify", "-in", exe).CombinedOutput()
	if !strings.Contains(string(out), "Calculated PE checksum") || !strings.Contains(string(out), "No signature found") {
		t.Fatalf("osslsigncode verify did not read the PE structure:\n%s", out)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestDesktopResources: the Windows window carries its icon, manifest and
// version (make cross: internal/tools/winres), as the Wails CLI would add.
func TestDesktopResources(t *testing.T) {
	exe := filepath.Join(testkit.RepoRoot(), "bin", "windows", "berth-desktop.exe")
	f, err := os.Open(exe)
	if err != nil {
		t.Skipf("needs %s (make cross)", exe)
	}
	defer f.Close()
	rs, err := winres.LoadFromEXE(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs.GetIcon(winres.Name("APP")); err != nil {
		t.Errorf("no APP icon: %v", err)
	}
	var manifest []byte
	rs.WalkType(winres.RT_MANIFEST, func(_ winres.Identifier, _ uint16, data []byte) bool { manifest = data; return false })
	if m := bytes.ToLower(manifest); !bytes.Contains(m, []byte("permonitorv2")) || !bytes.Contains(m, []byte("microsoft.windows.common-controls")) {
		t.Errorf("manifest:\n%s", manifest)
	}
	if rs.Count() < 3 {
		t.Errorf("%d resources", rs.Count())
	}
}
