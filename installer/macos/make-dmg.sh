#!/usr/bin/env bash
# Packs dist/Berth.app (make-app.sh) into dist/Berth-VERSION-ARCH.dmg: the
# app and a link to /Applications, compressed; signed, and notarized when
# NOTARY_PROFILE names a `xcrun notarytool store-credentials` profile.
set -euo pipefail
cd "$(dirname "$0")/../.."

APP=dist/Berth.app
[ -d "$APP" ] || { echo "no $APP: run installer/macos/make-app.sh first" >&2; exit 1; }
VERSION=${VERSION:-$(defaults read "$PWD/$APP/Contents/Info" CFBundleVersion)}
ARCH=$(lipo -archs "$APP/Contents/MacOS/berth")
DMG=dist/Berth-$VERSION-$ARCH.dmg
SIGN_IDENTITY=${SIGN_IDENTITY:--}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$APP" "$stage/"
ln -s /Applications "$stage/Applications"
rm -f "$DMG"
hdiutil create -volname "Berth" -srcfolder "$stage" -fs HFS+ -format UDZO -imagekey zlib-level=9 -ov "$DMG"
codesign --force --sign "$SIGN_IDENTITY" "$DMG"
if [ -n "${NOTARY_PROFILE:-}" ]; then
	xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
	xcrun stapler staple "$DMG"
fi
hdiutil verify "$DMG"
echo "$DMG"
