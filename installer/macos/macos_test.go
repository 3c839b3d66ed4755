// Package macos holds the scripts that make Berth.app and its .dmg on a
// Mac; this test checks what can be checked here: the property lists
// parse and say what the scripts and vm/vz rely on, and the scripts parse.
package macos

import (
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testkit"
)

// plist reads a flat property list dict: key → value ("true"/"false" for
// booleans).
func plist(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := xml.NewDecoder(f)
	d.Strict = true
	out := map[string]string{}
	var key, text string
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			text = ""
			if depth == 3 && (tok.Name.Local == "true" || tok.Name.Local == "false") {
				out[key] = tok.Name.Local
			}
		case xml.CharData:
			text += string(tok)
		case xml.EndElement:
			if depth == 3 {
				switch tok.Name.Local {
				case "key":
					key = text
				case "string":
					out[key] = text
				}
			}
			depth--
		}
	}
	return out
}

func TestPlists(t *testing.T) {
	root := testkit.RepoRoot()
	ent := plist(t, filepath.Join(root, "build", "darwin", "entitlements.plist"))
	if ent["com.apple.security.virtualization"] != "true" {
		t.Errorf("entitlements: %v", ent)
	}
	info := plist(t, filepath.Join(root, "build", "darwin", "Info.plist"))
	for k, want := range map[string]string{"CFBundleExecutable": "berth-desktop", "CFBundleIdentifier": "dev.berth.desktop",
		"CFBundleIconFile": "icon", "CFBundleVersion": "{{VERSION}}", "CFBundleShortVersionString": "{{SHORT_VERSION}}",
		"LSMinimumSystemVersion": "13.0"} {
		if info[k] != want {
			t.Errorf("Info.plist %s = %q, want %q", k, info[k], want)
		}
	}
}

func TestScripts(t *testing.T) {
	root := testkit.RepoRoot()
	app, err := os.ReadFile(filepath.Join(root, "installer", "macos", "make-app.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"build/darwin/entitlements.plist",
		`"$APP/Contents/Resources/guest/$GOARCH`, // where hostd looks in the bundle
		"--options runtime", "codesign --verify --deep --strict",
		"-o \"$APP/Contents/MacOS/berth-desktop\"", "-o \"$APP/Contents/MacOS/berth\"",
		`-out "$APP/Contents/Resources/docker"`, // where berth setup --docker looks in the bundle
	} {
		if !strings.Contains(string(app), want) {
			t.Errorf("make-app.sh lacks %q", want)
		}
	}
	for _, s := range []string{"make-app.sh", "make-dmg.sh"} {
		p := filepath.Join(root, "installer", "macos", s)
		if out, err := exec.Command("bash", "-n", p).CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %s", s, err, out)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", s)
		}
	}
}
