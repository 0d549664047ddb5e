//! `cargo xtask fuzz`: every fuzz target in `fuzz/` (issue 6) for a while,
//! starting from the corpus kept in `fuzz/corpus/`. cargo-fuzz builds them
//! with the eBPF nightly (libFuzzer, AddressSanitizer, overflow checks);
//! the kernel programs are not needed, so the build leaves them out.
//!
//! New inputs go to `target/fuzz/corpus/`, crashes to
//! `target/fuzz/artifacts/`; `--merge` then adds the inputs that reached
//! new code to `fuzz/corpus/`, to commit.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{cores, host_triple, run_cmd, setup, show};

const FUZZ_DIR: &str = "fuzz";
const WORK_DIR: &str = "target/fuzz";

#[derive(Debug, clap::Args)]
pub struct Options {
    /// How long each target runs.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub seconds: u64,
    /// Targets at once (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Then add the inputs that reached new code to fuzz/corpus/ (to
    /// commit).
    #[arg(long)]
    pub merge: bool,
    /// Only these targets (default: all, the files in fuzz/fuzz_targets/).
    pub targets: Vec<String>,
}

/// Sets up, then fuzzes.
pub fn fuzz(options: &Options) -> Result<()> {
    setup::setup(setup::Need::Test)?;
    run(options)
}

/// Builds the targets and runs them, `jobs` at a time; stops at the first
/// that fails (its crash shown, with how to reproduce it), the others
/// killed.
pub fn run(options: &Options) -> Result<()> {
    let all = targets(Path::new(FUZZ_DIR))?;
    let mut targets: Vec<String> = if options.targets.is_empty() {
        all
    } else {
        for t in &options.targets {
            if !all.contains(t) {
                bail!("no fuzz target {t:?}: the targets are {}", all.join(", "));
            }
        }
        options.targets.clone()
    };
    targets.sort();
    targets.dedup();
    let toolchain = setup::ebpf_toolchain_name()?;
    let target_dir = Path::new(FUZZ_DIR).join("target");
    run_cmd(
        Command::new("cargo")
            .arg(format!("+{toolchain}"))
            .args(["fuzz", "build", "--debug-assertions", "--target-dir"])
            .arg(&target_dir)
            .env("AYA_BUILD_SKIP", "1"),
        "fix the build error above (is cargo-fuzz installed? `cargo xtask setup` installs it)",
    )?;
    let bin_dir = target_dir.join(host_triple()?).join("release");
    for target in &targets {
        if !bin_dir.join(target).is_file() {
            bail!(
                "cargo fuzz built no {}: is there a [[bin]] for it in fuzz/Cargo.toml?",
                bin_dir.join(target).display()
            );
        }
    }

    let jobs = options.jobs.unwrap_or_else(cores).max(1);
    println!(
        "fuzz: {} target{}, {} s each, {jobs} at a time",
        targets.len(),
        if targets.len() == 1 { "" } else { "s" },
        options.seconds,
    );
    // Beyond its time, a target has this long to load its corpus and stop.
    let grace = Duration::from_secs(120);
    let deadline = Duration::from_secs(options.seconds) + grace;
    let mut queue = targets.iter();
    let mut running: Vec<Fuzzer> = Vec::new();
    loop {
        while running.len() < jobs
            && let Some(target) = queue.next()
        {
            running.push(Fuzzer::start(&bin_dir, target, options.seconds)?);
        }
        if running.is_empty() {
            break;
        }
        thread::sleep(Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            let fuzzer = &mut running[i];
            let status = fuzzer
                .child
                .try_wait()
                .with_context(|| format!("waiting for the fuzz target {}", fuzzer.target))?;
            if status.is_none() && fuzzer.started.elapsed() <= deadline {
                i += 1;
                continue;
            }
            let target = fuzzer.target.clone();
            // Dropping it kills it, if it still runs.
            drop(running.swap_remove(i));
            let log = fs::read_to_string(log_path(&target)).unwrap_or_default();
            match status {
                Some(status) if status.success() => {
                    println!("fuzz: {target}: {}", final_line(&log));
                }
                Some(status) => {
                    report_failure(&target, &log, &status.to_string(), &toolchain);
                    bail!(
                        "fuzz target {target} failed (above): fix the code, then keep the input \
                         in fuzz/corpus/{target}/ so that it stays checked"
                    );
                }
                None => {
                    report_failure(&target, &log, "still running", &toolchain);
                    bail!(
                        "fuzz target {target} ran {} s past its time and was killed: see its log",
                        grace.as_secs()
                    );
                }
            }
        }
    }
    if options.merge {
        for target in &targets {
            merge(&bin_dir, target)?;
        }
    }
    Ok(())
}

/// A running fuzz target, killed if dropped before it ends (an error, or
/// another target's failure, stops the run).
struct Fuzzer {
    target: String,
    child: Child,
    started: Instant,
}

impl Fuzzer {
    fn start(bin_dir: &Path, target: &str, seconds: u64) -> Result<Self> {
        let corpus = Path::new(WORK_DIR).join("corpus").join(target);
        let artifacts = Path::new(WORK_DIR).join("artifacts").join(target);
        let seeds = Path::new(FUZZ_DIR).join("corpus").join(target);
        for dir in [&corpus, &artifacts, &seeds] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let log = fs::File::create(log_path(target))
            .with_context(|| format!("creating {}", log_path(target).display()))?;
        let mut cmd = Command::new(bin_dir.join(target));
        cmd.arg(format!("-max_total_time={seconds}"))
            // An input that takes this long is a hang: reported as a crash.
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        let dict = Path::new(FUZZ_DIR).join(format!("{target}.dict"));
        if dict.exists() {
            cmd.arg(format!("-dict={}", dict.display()));
        }
        // New inputs go to the first folder; the kept corpus is only read.
        cmd.arg(&corpus)
            .arg(&seeds)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        println!("$ {} > {}", show(&cmd), log_path(target).display());
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start the fuzz target {target}"))?;
        Ok(Self {
            target: target.to_owned(),
            child,
            started: Instant::now(),
        })
    }
}

impl Drop for Fuzzer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The targets: one file each in `fuzz/fuzz_targets/`.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut targets: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("cannot list {} (run from the workspace)", dir.display()))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "rs" {
                return None;
            }
            Some(path.file_stem()?.to_str()?.to_owned())
        })
        .collect();
    targets.sort();
    Ok(targets)
}

fn log_path(target: &str) -> PathBuf {
    Path::new(WORK_DIR).join(format!("{target}.log"))
}

/// libFuzzer's last status line (`#runs DONE cov: ... corp: ... exec/s`).
fn final_line(log: &str) -> &str {
    log.lines()
        .rev()
        .find(|l| l.starts_with('#') && l.contains(" cov: "))
        .unwrap_or("finished (no status line)")
}

fn report_failure(target: &str, log: &str, status: &str, toolchain: &str) {
    let crashed = log.contains("panicked at") || log.contains("Test unit written to ");
    eprintln!(
        "fuzz: {target}: {} ({status})",
        if crashed { "CRASH" } else { "FAILED" }
    );
    for line in crash_summary(log) {
        eprintln!("  {line}");
    }
    eprintln!(
        "fuzz: {target}: whole log in {}",
        log_path(target).display()
    );
    if let Some(artifact) = log
        .lines()
        .find_map(|l| l.split_once("Test unit written to ").map(|(_, p)| p.trim()))
    {
        eprintln!(
            "fuzz: {target}: reproduce with `AYA_BUILD_SKIP=1 cargo +{toolchain} fuzz run \
             --debug-assertions {target} {artifact}` (or from the Base64 input above)"
        );
    }
}

/// What a crash log says in short: the panic's message (or the sanitizer's
/// report), libFuzzer's summary, and the input in base64, which outlives
/// a CI machine's artifacts.
fn crash_summary(log: &str) -> Vec<&str> {
    let lines: Vec<&str> = log.lines().collect();
    let mut summary: Vec<&str> = match lines.iter().position(|l| l.contains("panicked at")) {
        Some(from) => lines[from..]
            .iter()
            .take_while(|l| !l.starts_with("stack backtrace:"))
            .take(20)
            .copied()
            .collect(),
        None => {
            let from = lines
                .iter()
                .position(|l| l.starts_with("==") && l.contains("ERROR"))
                .unwrap_or(lines.len().saturating_sub(30));
            lines[from..].iter().take(30).copied().collect()
        }
    };
    let tail: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("SUMMARY:") || l.starts_with("Base64:"))
        .filter(|l| !summary.contains(l))
        .copied()
        .collect();
    summary.extend(tail);
    summary
}

/// Adds the inputs of this run that reached new code to `fuzz/corpus/`
/// (libFuzzer keeps the inputs already there).
fn merge(bin_dir: &Path, target: &str) -> Result<()> {
    let seeds = Path::new(FUZZ_DIR).join("corpus").join(target);
    let corpus = Path::new(WORK_DIR).join("corpus").join(target);
    let count = |dir: &Path| fs::read_dir(dir).map_or(0, |d| d.count());
    let before = count(&seeds);
    // Of the new inputs, the fewest that cover what the kept ones do not.
    let status = Command::new(bin_dir.join(target))
        .arg("-set_cover_merge=1")
        .arg(&seeds)
        .arg(&corpus)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot start the fuzz target {target}"))?;
    if !status.success() {
        bail!(
            "merging the corpus of {target} failed ({status}): run `{} -set_cover_merge=1 {} {}` \
             to see why",
            bin_dir.join(target).display(),
            seeds.display(),
            corpus.display()
        );
    }
    println!(
        "fuzz: {target}: {} → {} inputs in {}",
        before,
        count(&seeds),
        seeds.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target file without its `[[bin]]` would not be built, and its run
    /// would fail to start.
    #[test]
    fn every_target_is_declared() {
        let fuzz_dir = crate::workspace_root().join(FUZZ_DIR);
        let manifest = fs::read_to_string(fuzz_dir.join("Cargo.toml")).unwrap();
        let targets = targets(&fuzz_dir).unwrap();
        assert!(targets.len() >= 9, "{targets:?}");
        for target in targets {
            assert!(
                manifest.contains(&format!(
                    "name = \"{target}\"\npath = \"fuzz_targets/{target}.rs\""
                )),
                "fuzz/Cargo.toml has no [[bin]] for {target}"
            );
        }
    }

    #[test]
    fn crash_in_short() {
        let log = "INFO: seed\n\nthread '<unnamed>' (7) panicked at fuzz_targets/x.rs:20:5:\n\
                   planted\nstack backtrace:\n   0: frame\n==7== ERROR: libFuzzer: deadly signal\n\
                   SUMMARY: libFuzzer: deadly signal\nBase64: NDI=\n";
        assert_eq!(
            crash_summary(log),
            [
                "thread '<unnamed>' (7) panicked at fuzz_targets/x.rs:20:5:",
                "planted",
                "SUMMARY: libFuzzer: deadly signal",
                "Base64: NDI=",
            ]
        );
        let asan = "INFO: x\n==9==ERROR: AddressSanitizer: heap-buffer-overflow\n  #0 f\nSUMMARY: AddressSanitizer: heap-buffer-overflow\n";
        assert_eq!(
            crash_summary(asan)[0],
            "==9==ERROR: AddressSanitizer: heap-buffer-overflow"
        );
    }

    #[test]
    fn status_line() {
        let log = "INFO: seed\n#2\tINITED cov: 5 ft: 6 corp: 1/1b\n#90\tDONE   cov: 9 ft: 9 corp: 3/7b exec/s: 45\nDone 90 runs in 2 second(s)\n";
        assert_eq!(
            final_line(log),
            "#90\tDONE   cov: 9 ft: 9 corp: 3/7b exec/s: 45"
        );
        assert_eq!(final_line(""), "finished (no status line)");
    }
}
