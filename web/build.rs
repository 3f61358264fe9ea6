//! Builds the browser half of the UI, so `cargo run -p crest-web` serves everything:
//!
//! 1. `web/ui/client` (its own workspace, so `hydrate` never meets the server's `ssr`) is
//!    compiled for `wasm32-unknown-unknown` into `<target>/ui-wasm` (adding the target with
//!    rustup when it is missing; that works offline);
//! 2. wasm-bindgen (the library, pinned to the same version as the client's `wasm-bindgen`)
//!    writes `client.js` and `client_bg.wasm` into `OUT_DIR/pkg`, which the server embeds.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for p in [
        "ui/src",
        "ui/Cargo.toml",
        "ui/client/src",
        "ui/client/Cargo.toml",
        "ui/client/Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", manifest.join(p).display());
    }
    println!("cargo:rerun-if-changed=build.rs");
    // <target>/<profile>/build/<pkg>-<hash>/out → <target>
    let target_dir = out
        .ancestors()
        .nth(4)
        .map_or_else(|| out.join("ui-wasm"), |t| t.join("ui-wasm"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ensure_wasm_target();
    let client = manifest.join("ui/client/Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "--manifest-path",
    ])
    .arg(&client)
    .env("CARGO_TARGET_DIR", &target_dir);
    // The outer build's flags, wrappers and jobserver are not the client's.
    for k in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "RUSTC",
    ] {
        cmd.env_remove(k);
    }
    let status = cmd.status().expect("run cargo for the UI client");
    assert!(
        status.success(),
        "building the UI client (web/ui/client) for wasm32-unknown-unknown failed"
    );
    let wasm = target_dir.join("wasm32-unknown-unknown/release/crest_ui_client.wasm");
    let pkg = out.join("pkg");
    std::fs::create_dir_all(&pkg).expect("create pkg dir");
    bindgen(&wasm, &pkg);
}

fn ensure_wasm_target() {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-unknown-unknown"))
        .unwrap_or(false);
    if !installed {
        let ok = Command::new("rustup")
            .args(["target", "add", "wasm32-unknown-unknown"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "the UI needs the wasm32-unknown-unknown target: rustup target add wasm32-unknown-unknown"
        );
    }
}

fn bindgen(wasm: &Path, pkg: &Path) {
    let mut b = wasm_bindgen_cli_support::Bindgen::new();
    b.input_path(wasm)
        .web(true)
        .expect("wasm-bindgen --target web")
        .out_name("client")
        .typescript(false);
    b.generate(pkg).expect("wasm-bindgen");
}
