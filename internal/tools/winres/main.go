// Command winres makes the Windows resources of berth-desktop.exe from
// build/appicon.png: the icon, an application manifest (per-monitor DPI
// awareness, common controls 6, as the Wails CLI's) and version info, as a
// .syso object the Go linker picks up from the main package's directory;
// and the same icon as an .ico for the installer. make cross-windows runs
// it (the Wails CLI is not needed).
package main

import (
	"flag"
	"fmt"
	"image/png"
	"os"
	"regexp"

	"github.com/tc-hib/winres"
	"github.com/tc-hib/winres/version"
)

func main() {
	var (
		icon    = flag.String("icon", "build/appicon.png", "square PNG")
		ver     = flag.String("version", "dev", "Berth's version")
		syso    = flag.String("syso", "", ".syso to write (e.g. berth-desktop_windows_amd64.syso)")
		ico     = flag.String("ico", "", ".ico to write (optional)")
		product = flag.String("name", "Berth", "product name")
	)
	flag.Parse()
	if err := run(*icon, *ver, *syso, *ico, *product); err != nil {
		fmt.Fprintln(os.Stderr, "winres:", err)
		os.Exit(1)
	}
}

func run(iconPath, ver, syso, ico, product string) error {
	f, err := os.Open(iconPath)
	if err != nil {
		return err
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", iconPath, err)
	}
	icon, err := winres.NewIconFromResizedImage(img, []int{256, 64, 48, 32, 16})
	if err != nil {
		return err
	}
	if ico != "" {
		out, err := os.Create(ico)
		if err != nil {
			return err
		}
		if err := icon.SaveICO(out); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	}
	if syso == "" {
		return nil
	}
	rs := &winres.ResourceSet{}
	if err := rs.SetIcon(winres.Name("APP"), icon); err != nil {
		return err
	}
	rs.SetManifest(winres.AppManifest{
		Identity:            winres.AssemblyIdentity{Name: "dev.berth.desktop"},
		Description:         product,
		Compatibility:       winres.Win10AndAbove,
		ExecutionLevel:      winres.AsInvoker,
		DPIAwareness:        winres.DPIPerMonitorV2,
		UseCommonControlsV6: true,
		LongPathAware:       true,
	})
	var vi version.Info
	num := regexp.MustCompile(`^v?(\d+(\.\d+){0,3})`).FindStringSubmatch(ver)
	if num != nil {
		vi.SetFileVersion(num[1])
		vi.SetProductVersion(num[1])
	}
	for k, v := range map[string]string{"ProductName": product, "FileDescription": product, "ProductVersion": ver,
		"FileVersion": ver, "CompanyName": product, "OriginalFilename": "berth-desktop.exe"} {
		if err := vi.Set(0, k, v); err != nil {
			return err
		}
	}
	rs.SetVersionInfo(vi)
	out, err := os.Create(syso)
	if err != nil {
		return err
	}
	if err := rs.WriteObject(out, winres.ArchAMD64); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
