//! With the `tch` feature, records libtorch's folder in the `tiller`
//! binary's run path, so the binary starts without `LD_LIBRARY_PATH`. The
//! folder is found the way the torch-sys build finds libtorch: `$LIBTORCH`,
//! or the torch package of the first Python on `PATH` when
//! `LIBTORCH_USE_PYTORCH` is set.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=PATH");
    if std::env::var_os("CARGO_FEATURE_TCH").is_none() {
        return;
    }
    if let Some(dir) = libtorch_lib_dir() {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{}", dir.display());
    }
}

fn libtorch_lib_dir() -> Option<PathBuf> {
    if let Some(root) = std::env::var_os("LIBTORCH") {
        return Some(PathBuf::from(root).join("lib"));
    }
    std::env::var_os("LIBTORCH_USE_PYTORCH")?;
    let script = "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))";
    ["python3", "python"].into_iter().find_map(|python| {
        let output = Command::new(python)
            .args(["-W", "ignore", "-c", script])
            .output()
            .ok()?;
        let dir = String::from_utf8(output.stdout).ok()?;
        (output.status.success() && !dir.trim().is_empty()).then(|| PathBuf::from(dir.trim()))
    })
}
