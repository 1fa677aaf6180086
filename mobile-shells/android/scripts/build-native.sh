#!/usr/bin/env bash
# Builds what the Android app loads: libtandem_ffi.so for each ABI into app/src/main/jniLibs
# (cargo-ndk), and the Kotlin bindings into shared/build/generated/uniffi.
# Needs: the Android NDK (ANDROID_NDK_HOME), cargo-ndk (`cargo install cargo-ndk`), and
#   rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
profile=${PROFILE:-release}
flag=$([ "$profile" = release ] && echo --release || true)

# The phone library without the bindings generator (`cli` pulls in clap and the templates).
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -o "$here/app/src/main/jniLibs" \
  build --locked -p tandem-ffi --lib --no-default-features $flag

# Bindings from the host build of the same crate.
cargo build --locked -p tandem-ffi --lib --bins
rm -rf "$here/shared/build/generated/uniffi"
"$target/debug/uniffi-bindgen" generate --library "$target/debug/libtandem_ffi.so" \
  --language kotlin --out-dir "$here/shared/build/generated/uniffi"
echo "jniLibs: $(cd "$here/app/src/main/jniLibs" && ls -d */ | tr -d / | tr '\n' ' ')"
