//! The bindings generator, pinned to this workspace's uniffi version:
//! `cargo run -p tandem-ffi --bin uniffi-bindgen -- generate --library … --language kotlin`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
