#!/usr/bin/env bash
# Builds dist/Berth.app on a Mac (Xcode command line tools, Go, Node): the
# desktop window (Wails, cgo) as the bundle's executable, the berth CLI (its
# host agent runs the VM with Apple Virtualization, cgo), the guest image,
# the icon; then signs both binaries with the virtualization entitlement
# (hardened runtime) and the bundle.
#
#   GUEST_DIR=build/guest/out/arm64 SIGN_IDENTITY="Developer ID Application: …" installer/macos/make-app.sh
#
# The guest image is built on Linux (make guest / make cross: it needs
# Debian's packages) and copied here; SIGN_IDENTITY "-" (the default) signs
# ad hoc, enough to run on this Mac.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
case "$(uname -m)" in
	arm64) GOARCH=arm64 ;;
	x86_64) GOARCH=amd64 ;;
	*) echo "unsupported machine $(uname -m)" >&2; exit 1 ;;
esac
GOARCH=${ARCH:-$GOARCH}
GUEST_DIR=${GUEST_DIR:-build/guest/out/$GOARCH}
SIGN_IDENTITY=${SIGN_IDENTITY:--}
ENTITLEMENTS=build/darwin/entitlements.plist
APP=dist/Berth.app
PKG=github.com/berth-dev/berth

for f in "$GUEST_DIR/vmlinuz" "$GUEST_DIR/initrd.img" "$GUEST_DIR/system.img"; do
	[ -f "$f" ] || { echo "missing $f: build the guest on Linux (make cross) and copy build/guest/out/$GOARCH here" >&2; exit 1; }
done

rm -rf "$APP"
mkdir -p "$APP/Contents/MacOS" "$APP/Contents/Resources/guest/$GOARCH"

(cd frontend && npm ci --no-audit --no-fund && npm run build)
export CGO_ENABLED=1 GOOS=darwin GOARCH
go build -trimpath -tags desktop,production -ldflags "-s -w" -o "$APP/Contents/MacOS/berth-desktop" .
go build -trimpath -ldflags "-s -w -X $PKG/app/cli.Version=$VERSION" -o "$APP/Contents/MacOS/berth" ./cmd/berth

# hostd looks for the guest next to its binary: ../Resources/guest/ARCH.
cp "$GUEST_DIR"/vmlinuz "$GUEST_DIR"/initrd.img "$GUEST_DIR"/system.img "$APP/Contents/Resources/guest/$GOARCH/"
[ -f "$GUEST_DIR/Image" ] && cp "$GUEST_DIR/Image" "$APP/Contents/Resources/guest/$GOARCH/"
[ -f "$GUEST_DIR/manifest.json" ] && cp "$GUEST_DIR/manifest.json" "$APP/Contents/Resources/guest/$GOARCH/"

# The docker CLI with buildx and compose (pinned: installer/dockercli);
# `berth setup --docker` (the app's first run) puts them to use where the
# user has none.
CGO_ENABLED=0 go run ./installer/dockercli/build -goos darwin -goarch "$GOARCH" -out "$APP/Contents/Resources/docker"

short=$(echo "$VERSION" | sed -E 's/^v//; s/^([0-9]+(\.[0-9]+){0,2}).*/\1/; s/^[^0-9].*/0.0.0/')
sed -e "s/{{VERSION}}/$VERSION/" -e "s/{{SHORT_VERSION}}/$short/" build/darwin/Info.plist > "$APP/Contents/Info.plist"
plutil -lint "$APP/Contents/Info.plist"

# The icon: every size iconutil wants, from the 256×256 app icon.
iconset=$(mktemp -d)/icon.iconset
mkdir -p "$iconset"
for s in 16 32 128 256; do
	sips -z $s $s build/appicon.png --out "$iconset/icon_${s}x${s}.png" >/dev/null
	d=$((s * 2))
	sips -z $d $d build/appicon.png --out "$iconset/icon_${s}x${s}@2x.png" >/dev/null
done
iconutil -c icns "$iconset" -o "$APP/Contents/Resources/icon.icns"

# Sign inside out: the binaries with the entitlement and the hardened
# runtime (notarization wants both, and a secure timestamp), then the bundle.
ts=--timestamp
[ "$SIGN_IDENTITY" = "-" ] && ts=--timestamp=none
for bin in berth berth-desktop; do
	codesign --force --options runtime "$ts" --entitlements "$ENTITLEMENTS" \
		--sign "$SIGN_IDENTITY" "$APP/Contents/MacOS/$bin"
done
for tool in docker cli-plugins/docker-buildx cli-plugins/docker-compose; do
	codesign --force --options runtime "$ts" --sign "$SIGN_IDENTITY" "$APP/Contents/Resources/docker/$tool"
done
codesign --force --options runtime "$ts" --entitlements "$ENTITLEMENTS" --sign "$SIGN_IDENTITY" "$APP"
codesign --verify --deep --strict --verbose=2 "$APP"
codesign -d --entitlements - "$APP/Contents/MacOS/berth" | grep -q com.apple.security.virtualization
echo "$APP ($VERSION, $GOARCH) signed as $SIGN_IDENTITY"
