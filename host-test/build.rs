//! Builds the guest: the `sms-notification` crate for `wasm32-wasip2`, in
//! release mode, with its own target directory (sharing the outer build's
//! deadlocks on its lock). The component's path reaches the host as the
//! generated constant `COMPONENT` (see `src/lib.rs`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .expect("host-test sits in the workspace");
    for path in [
        "src",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=SMS_NOTIFICATION_WASM");
    postgres_tests();
    browser_tests();

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    // An operator may point the host at a component built elsewhere.
    let wasm = match env::var_os("SMS_NOTIFICATION_WASM") {
        Some(path) => PathBuf::from(path),
        None => build_guest(root),
    };
    let constant = format!(
        "pub const COMPONENT: &str = {:?};\n",
        wasm.display().to_string()
    );
    std::fs::write(out_dir.join("component.rs"), constant).unwrap();
}

fn build_guest(root: &Path) -> PathBuf {
    ensure_target();
    // `target/guest` keeps the guest's build apart from the outer build.
    let target_dir = root.join("target").join("guest");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--release",
            "--locked",
            "--package",
            "sms-notification",
            "--lib",
        ])
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings are for the host, not the guest.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME"
            || key == "RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
        {
            cmd.env_remove(key.as_ref());
        }
    }
    let status = cmd.status().expect("running cargo to build the guest");
    if !status.success() {
        panic!("building the sms-notification component for {TARGET} failed (see above)");
    }
    let wasm = target_dir
        .join(TARGET)
        .join("release")
        .join("sms_notification.wasm");
    assert!(
        wasm.exists(),
        "the guest build produced no {}",
        wasm.display()
    );
    wasm
}

/// Installs the guest's target when missing: automatic installs are off on
/// some machines, and a fresh clone must build with one command.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .expect("running rustc --print sysroot");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(TARGET).exists() {
        return;
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        cmd.arg("--toolchain").arg(toolchain);
    }
    match cmd.status() {
        Ok(status) if status.success() => {}
        _ => panic!(
            "the Rust target {TARGET} is missing and could not be installed; run: rustup target add {TARGET}"
        ),
    }
}

/// The PostgreSQL tests start a throwaway cluster with the system's
/// `initdb`: without one they are compiled as ignored (with the reason),
/// never counted as passed. `SMS_REQUIRE_POSTGRES=1` (set by `.ci/run`)
/// makes a missing PostgreSQL a build error instead.
fn postgres_tests() {
    println!("cargo:rustc-check-cfg=cfg(postgres_found)");
    println!("cargo:rerun-if-env-changed=SMS_REQUIRE_POSTGRES");
    // Installing PostgreSQL adds a directory here.
    println!("cargo:rerun-if-changed=/usr/lib");
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .any(|version| version.path().join("bin/initdb").exists());
    if found {
        println!("cargo:rustc-cfg=postgres_found");
    } else if env::var_os("SMS_REQUIRE_POSTGRES").is_some() {
        panic!(
            "SMS_REQUIRE_POSTGRES is set, but there is no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql)"
        );
    } else {
        println!(
            "cargo:warning=PostgreSQL not found: its tests are ignored (apt-get install postgresql to run them)"
        );
    }
}

/// The browser test drives Debian's Chromium through `playwright-core`
/// (installed by `npm ci --prefix host-test/tests/browser`) with Node.js.
/// Without them it is compiled as ignored, and the build says so in one
/// line. `SMS_REQUIRE_BROWSER=1` (set by `.ci/run`) makes their absence a
/// build error.
fn browser_tests() {
    println!("cargo:rustc-check-cfg=cfg(browser_found)");
    println!("cargo:rerun-if-env-changed=SMS_REQUIRE_BROWSER");
    // The folder is in git (a missing path would rerun this script on every
    // build); `npm ci` changes it.
    println!("cargo:rerun-if-changed=tests/browser");
    let chromium = std::path::Path::new("/usr/bin/chromium").exists();
    if chromium {
        println!("cargo:rerun-if-changed=/usr/bin/chromium");
    }
    let playwright = std::path::Path::new("tests/browser/node_modules/playwright-core").exists();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if chromium && playwright && node {
        println!("cargo:rustc-cfg=browser_found");
        return;
    }
    let missing: Vec<&str> = [
        (!chromium).then_some("/usr/bin/chromium (apt-get install chromium)"),
        (!node).then_some("node"),
        (!playwright).then_some("playwright-core (npm ci --prefix host-test/tests/browser)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if env::var_os("SMS_REQUIRE_BROWSER").is_some() {
        panic!(
            "SMS_REQUIRE_BROWSER is set, but the browser test lacks: {}",
            missing.join(", ")
        );
    }
    println!(
        "cargo:warning=browser test ignored: missing {} (after installing: touch host-test/build.rs)",
        missing.join(", ")
    );
}
