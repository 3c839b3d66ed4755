package setup

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
)

// launchAgentLabel names Berth's macOS LaunchAgent
// (~/Library/LaunchAgents/LABEL.plist).
const launchAgentLabel = "dev.berth.desktop"

// launchAgent is the LaunchAgent that starts exe hidden at login.
func launchAgent(exe string) []byte {
	esc := func(s string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>%s</string>
	<key>ProgramArguments</key>
	<array>
		<string>%s</string>
		<string>%s</string>
	</array>
	<key>RunAtLoad</key>
	<true/>
	<key>ProcessType</key>
	<string>Interactive</string>
</dict>
</plist>
`, launchAgentLabel, esc(exe), LoginArg))
}

// autostartEntry is the XDG autostart entry that starts exe hidden at login.
func autostartEntry(exe string) []byte {
	// Exec's quoting rules (Desktop Entry spec): quote the path, escaping
	// ", `, $ and \ inside.
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`).Replace(exe)
	return []byte(fmt.Sprintf("[Desktop Entry]\nType=Application\nName=Berth\nComment=Linux containers in a small VM\nExec=\"%s\" %s\nIcon=berth\nX-GNOME-Autostart-enabled=true\n", q, LoginArg))
}

// runValue is the Windows Run key's value that starts exe hidden at login.
func runValue(exe string) string { return `"` + exe + `" ` + LoginArg }
