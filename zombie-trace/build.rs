//! Builds the eBPF programs so that a plain `cargo build` embeds them.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

/// The eBPF toolchain: its LLVM must match bpf-linker's (see xtask setup).
const EBPF_TOOLCHAIN: &str = "nightly-2026-08-01";
const EBPF_PACKAGE: &str = "zombie-trace-ebpf";
/// The objects' names in OUT_DIR (the eBPF crate's bin targets).
const EBPF_OBJECTS: [&str; 2] = ["zombie-trace", "zombie-trace-stacks"];

fn main() -> anyhow::Result<()> {
    commit();
    println!("cargo::rerun-if-env-changed=AYA_BUILD_SKIP");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let linker = which_bpf_linker();
    how_built(if skip { None } else { linker.as_deref() });
    // `cargo check`/clippy and the pure unit tests must work without the eBPF
    // toolchain: write an empty object, which the loader refuses at run time
    // with a message that says how to build the real one.
    if skip || linker.is_none() {
        if !skip {
            println!(
                "cargo::warning=bpf-linker not found: building without the eBPF programs; run `cargo xtask setup` first"
            );
            // Build again once bpf-linker appears: a path that does not
            // exist makes cargo rerun this script on every build.
            println!("cargo::rerun-if-env-changed=PATH");
            for dir in env::split_paths(&env::var_os("PATH").unwrap_or_default()) {
                println!(
                    "cargo::rerun-if-changed={}",
                    dir.join("bpf-linker").display()
                );
            }
        }
        for object in EBPF_OBJECTS {
            let stub = out_dir.join(object);
            if !stub.exists() || skip {
                fs::write(&stub, []).with_context(|| format!("writing {}", stub.display()))?;
            }
        }
        return Ok(());
    }
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == EBPF_PACKAGE)
        .ok_or_else(|| anyhow!("package {EBPF_PACKAGE} not in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("{EBPF_PACKAGE} manifest has no parent"))?
        .as_str();
    aya_build::build_ebpf(
        [Package {
            name: EBPF_PACKAGE,
            root_dir,
            ..Default::default()
        }],
        Toolchain::Custom(EBPF_TOOLCHAIN),
    )
}

fn which_bpf_linker() -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join("bpf-linker"))
        .find(|p| p.is_file())
}

/// The commit built, for `--version` and `zombie_trace_build_info`:
/// `unknown` outside a git checkout (a source tarball).
fn commit() {
    // Only paths that exist: cargo reruns the script every time for one
    // that does not.
    for path in ["../.git/HEAD", "../.git/refs/heads", "../.git/packed-refs"] {
        if fs::exists(path).unwrap_or(false) {
            println!("cargo::rerun-if-changed={path}");
        }
    }
    println!("cargo::rerun-if-env-changed=ZOMBIE_TRACE_COMMIT");
    let commit = env::var("ZOMBIE_TRACE_COMMIT").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        let hash = String::from_utf8(out.stdout).ok()?;
        let hash = hash.trim();
        (out.status.success() && hash.bytes().all(|b| b.is_ascii_hexdigit()) && !hash.is_empty())
            .then(|| hash.to_owned())
    });
    println!(
        "cargo::rustc-env=ZOMBIE_TRACE_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}

/// How this binary was built, for `--version`: an operator who copied it
/// onto a host can tell which build it is and whether it needs a libc.
fn how_built(bpf_linker: Option<&Path>) {
    println!("cargo::rerun-if-env-changed=ZOMBIE_TRACE_BUILT_BY");
    let by = env::var("ZOMBIE_TRACE_BUILT_BY").unwrap_or_else(|_| "cargo build".to_owned());
    let target = env::var("TARGET").unwrap_or_default();
    let profile = env::var("PROFILE").unwrap_or_default();
    let first_line = |program: &Path| {
        let out = Command::new(program).arg("--version").output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        Some(text.lines().next()?.trim().to_owned())
    };
    let rustc = env::var_os("RUSTC")
        .and_then(|rustc| first_line(Path::new(&rustc)))
        .unwrap_or_else(|| "rustc (version unknown)".to_owned());
    let ebpf = match bpf_linker {
        Some(linker) => format!(
            "eBPF programs by {EBPF_TOOLCHAIN} and {}",
            first_line(linker).unwrap_or_else(|| "bpf-linker".to_owned())
        ),
        None => "without the eBPF programs (AYA_BUILD_SKIP or no bpf-linker)".to_owned(),
    };
    println!("cargo::rustc-env=ZOMBIE_TRACE_BUILD={by}, {profile}, {target}, {rustc}, {ebpf}");
}
