#!/usr/bin/env bash
# The Android shell's plain-Kotlin module on the JVM: builds libtandem_ffi.so and the
# `tandem` server (debug, the shared target dir), generates the Kotlin bindings, compiles
# the module with its tests against them with -Werror, and runs the tests (a demo server
# on 127.0.0.1, two phones). The module must stay free of Android: checked first.
# Needs: kotlinc (npm kotlin-compiler), JNA (/usr/share/java/jna.jar, Debian libjna-java).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
out=$target/mobile-shells/shared
lib=$target/debug/libtandem_ffi.so

echo "== shared: no Android imports"
if grep -rnE '^import (android|androidx)\.' "$here/src"; then
  echo "the shared module must not use Android APIs (they belong in app/)"
  exit 1
fi

kotlin_home=${KOTLIN_HOME:-$(npm root -g)/kotlin-compiler}
jna=${JNA_JAR:-/usr/share/java/jna.jar}
rm -rf "$out"
# The demo-server harness, the platform fakes and the QR frame maker are the binding tests'
# own (one copy for both test sets).
sources="$(find "$here/src/main/kotlin" "$here/src/test/kotlin" -name '*.kt' | sort) $root/ffi/tests/bindings/kotlin/Server.kt $root/ffi/tests/bindings/kotlin/Platform.kt $root/ffi/tests/bindings/kotlin/Frames.kt"
if [ -n "${TANDEM_KOTLIN_BINDINGS_CLASSES:-}" ]; then
  # scripts/test-bindings compiled the generated bindings already (the slow part): reuse them.
  echo "== compile against $TANDEM_KOTLIN_BINDINGS_CLASSES (kotlinc -Werror)"
  bindings_cp=$TANDEM_KOTLIN_BINDINGS_CLASSES
  # shellcheck disable=SC2086
  "$kotlin_home/bin/kotlinc" -Werror -d "$out/classes" -cp "$jna:$bindings_cp" $sources
else
  echo "== build: libtandem_ffi.so, tandem, uniffi-bindgen"
  cargo build --locked -p tandem-ffi -p tandem-server --lib --bins
  echo "== generate Kotlin bindings into $out/bindings"
  "$target/debug/uniffi-bindgen" generate --library "$lib" --language kotlin --out-dir "$out/bindings"
  echo "== compile (kotlinc -Werror)"
  bindings_cp=
  # shellcheck disable=SC2086
  "$kotlin_home/bin/kotlinc" -Werror -d "$out/classes" -cp "$jna" \
    "$out/bindings/tandem/tandem.kt" $sources
fi

echo "== run"
TANDEM_BIN=$target/debug/tandem \
TANDEM_FIXTURES=$root/core/tests/fixtures/photos \
  java -Djava.awt.headless=true -Djna.library.path="$target/debug" \
  -cp "$out/classes${bindings_cp:+:$bindings_cp}:$jna:$kotlin_home/lib/kotlin-stdlib.jar" \
  tandem.shell.MainKt
