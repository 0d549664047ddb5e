//! `cargo xtask test`: set up, then fmt, clippy, the whole test suite, a
//! minute of each fuzz target (`fuzz`), the end-to-end scenarios on the
//! oldest kernel of the matrix (`vmtest`), and the release files on clean
//! machines (`dist --check`), stopping at the first failure.
//!
//! The end-to-end tests load eBPF programs, so the test binaries must run as
//! root. As root everything runs directly. Otherwise cargo builds as the
//! user (so that target/ and ~/.cargo stay the user's) and runs each test
//! binary through `sudo --preserve-env` (cargo's target runner).

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::{deploy, dist, fuzz, host_triple, is_root, run_cmd, setup, vmtest, which};

/// The kernel of the matrix every test run boots: the oldest, the most
/// unlike the hosts'.
const OLDEST: &str = "5.10";
/// Where in the cargo steps the deployment's check goes: before the test
/// suite (the fifth), which takes long.
const DEPLOY_CHECK_BEFORE: usize = 4;
/// How long each fuzz target runs: long enough to get past the corpus kept
/// in fuzz/corpus/ into new inputs.
const FUZZ_SECONDS: u64 = 60;

pub fn test() -> Result<()> {
    let runner = if is_root() {
        None
    } else if which("sudo").is_some() {
        Some(root_runner()?)
    } else {
        bail!(
            "the end-to-end tests load eBPF programs and must run as root, and sudo is not \
             installed: run `./x.sh test` as root"
        );
    };
    setup::setup(setup::Need::Test)?;

    let steps: [Step; 6] = [
        (
            "formatting",
            &["fmt", "--all", "--", "--check"],
            &[],
            "run `cargo fmt --all` and look at the diff",
        ),
        (
            "formatting of the fuzz targets",
            &["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"],
            &[],
            "run `cargo fmt --manifest-path fuzz/Cargo.toml` and look at the diff",
        ),
        (
            "lints",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
            "fix the clippy warnings above",
        ),
        // The fuzz targets need no kernel programs.
        (
            "lints of the fuzz targets",
            &[
                "clippy",
                "--manifest-path",
                "fuzz/Cargo.toml",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[("AYA_BUILD_SKIP", "1")],
            "fix the clippy warnings above",
        ),
        (
            "tests",
            &["test", "--workspace", "--release", "--", "--test-threads=1"],
            &[],
            "fix the failing tests above (rerun one with `cargo test --release -p zombie-trace NAME -- --test-threads=1` as root)",
        ),
        // Every scenario again the way of the oldest kernels (the tracer
        // inherits the variable), whatever kernel this is.
        (
            "end-to-end tests, the old kernels' way",
            &[
                "test",
                "--release",
                "-p",
                "zombie-trace",
                "--test",
                "e2e",
                "--test",
                "containers",
                "--",
                "--test-threads=1",
            ],
            &[("ZOMBIE_TRACE_COMPAT", "1")],
            "fix the failing tests above (rerun one with `ZOMBIE_TRACE_COMPAT=1 cargo test --release -p zombie-trace --test e2e NAME -- --test-threads=1` as root)",
        ),
    ];
    // The deployment's check comes after the lints, before the long steps;
    // then the fuzz targets, and the matrix's oldest kernel under qemu.
    let total = steps.len() + 4;
    let mut number = 0;
    for (i, (name, args, env, hint)) in steps.into_iter().enumerate() {
        if i == DEPLOY_CHECK_BEFORE {
            number += 1;
            println!();
            println!("==> [{number}/{total}] the deployment (deploy/): cargo xtask deploy-check");
            deploy::check()
                .with_context(|| format!("step {number}/{total} (deploy/) failed: rerun it with `cargo xtask deploy-check`"))?;
        }
        number += 1;
        let env: &[(&str, &str)] = env;
        println!();
        let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        println!(
            "==> [{number}/{total}] {name}: {}cargo {}",
            shown.concat(),
            args.join(" ")
        );
        let mut cmd = Command::new("cargo");
        cmd.args(args)
            .env_remove("AYA_BUILD_SKIP")
            .envs(env.iter().copied());
        if let Some((key, value)) = &runner {
            cmd.env(key, value);
        }
        run_cmd(&mut cmd, hint)
            .with_context(|| format!("step {number}/{total} ({name}) failed"))?;
    }
    println!();
    println!(
        "==> [{}/{total}] fuzzing, {FUZZ_SECONDS} s a target: cargo xtask fuzz --seconds {FUZZ_SECONDS}",
        total - 2
    );
    fuzz::run(&fuzz::Options {
        seconds: FUZZ_SECONDS,
        jobs: None,
        targets: Vec::new(),
        merge: false,
    })
    .with_context(|| format!("step {}/{total} (fuzzing) failed", total - 2))?;
    println!();
    println!(
        "==> [{}/{total}] the scenarios on Linux {OLDEST} under qemu: cargo xtask vmtest --kernel {OLDEST}",
        total - 1
    );
    let vmtest = if runner.is_none() {
        vmtest::vmtest(&[OLDEST.to_owned()], false)
    } else {
        let xtask = std::env::current_exe().context("finding this xtask binary")?;
        run_cmd(
            Command::new("sudo")
                .arg("--preserve-env")
                .arg(xtask)
                // Built by the tests above, as this user: not again as root.
                .args(["vmtest", "--no-build", "--kernel", OLDEST]),
            "see the table above",
        )
    };
    vmtest.with_context(|| {
        format!(
            "step {}/{total} (Linux {OLDEST} under qemu) failed",
            total - 1
        )
    })?;
    println!();
    println!(
        "==> [{total}/{total}] the release artifacts on clean machines: cargo xtask dist --check"
    );
    let shipped = if runner.is_none() {
        dist::dist(&dist::Options {
            check: true,
            no_build: false,
        })
    } else {
        run_cmd(
            Command::new("cargo").args(["xtask", "dist"]),
            "see the error above",
        )
        .and_then(|()| {
            for arch in [&dist::NATIVE, &dist::ARM64] {
                run_cmd(
                    &mut dist::check::build_static_xtask(arch),
                    "fix the compile error above",
                )?;
            }
            Ok(())
        })
        .and_then(|()| {
            let xtask = std::env::current_exe().context("finding this xtask binary")?;
            run_cmd(
                Command::new("sudo").arg("--preserve-env").arg(xtask).args([
                    "dist",
                    "--check",
                    "--no-build",
                ]),
                "see the checks above",
            )
        })
    };
    shipped.with_context(|| format!("step {total}/{total} (the release artifacts) failed: rerun it with `cargo xtask dist --check`"))?;
    println!();
    println!("==> all {total} steps passed");
    Ok(())
}

/// One step: its name, cargo's arguments, the environment it adds, and
/// what to do when it fails.
type Step = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
    &'static str,
);

/// `CARGO_TARGET_<HOST>_RUNNER=sudo --preserve-env`: cargo then runs the
/// test binaries as root.
fn root_runner() -> Result<(String, String)> {
    let host = host_triple()?;
    let key = format!(
        "CARGO_TARGET_{}_RUNNER",
        host.to_uppercase().replace(['-', '.'], "_")
    );
    println!("not root: the test binaries will run through sudo ({key})");
    Ok((key, "sudo --preserve-env".to_owned()))
}
