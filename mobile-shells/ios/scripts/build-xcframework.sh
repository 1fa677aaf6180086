#!/usr/bin/env bash
# Builds what the iOS app links: TandemFFI.xcframework (the static library for devices and
# both simulators) and the Swift bindings (Tandem.swift, the C header and module map).
# Runs on a Mac with Xcode and the Rust targets:
#   rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios
# Output: mobile-shells/ios/Generated/ (the Xcode project refers to it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
profile=${PROFILE:-release}
out=$here/Generated
flag=$([ "$profile" = release ] && echo --release || true)

# The phone library without the bindings generator (`cli` pulls in clap and the templates).
for triple in aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios; do
  cargo build --locked -p tandem-ffi --lib --no-default-features $flag --target "$triple"
done

# Bindings from the host build of the same crate (metadata is read from the library).
cargo build --locked -p tandem-ffi --lib --bins
rm -rf "$out" && mkdir -p "$out/bindings" "$out/headers"
"$target/debug/uniffi-bindgen" generate --library "$target/debug/libtandem_ffi.dylib" \
  --language swift --out-dir "$out/bindings"
mv "$out/bindings/Tandem.swift" "$out/Tandem.swift"
cp "$out/bindings/"*FFI.h "$out/headers/"
# The module map must be named module.modulemap for Xcode to find it in the headers folder.
cp "$out/bindings/"*FFI.modulemap "$out/headers/module.modulemap"

# One library for both simulator architectures, then the XCFramework.
mkdir -p "$target/ios-sim-universal/$profile"
lipo -create \
  "$target/aarch64-apple-ios-sim/$profile/libtandem_ffi.a" \
  "$target/x86_64-apple-ios/$profile/libtandem_ffi.a" \
  -output "$target/ios-sim-universal/$profile/libtandem_ffi.a"
xcodebuild -create-xcframework \
  -library "$target/aarch64-apple-ios/$profile/libtandem_ffi.a" -headers "$out/headers" \
  -library "$target/ios-sim-universal/$profile/libtandem_ffi.a" -headers "$out/headers" \
  -output "$out/TandemFFI.xcframework"
echo "built $out/TandemFFI.xcframework and $out/Tandem.swift"
