//! Loading and attaching the kernel programs, after checking that this
//! machine can run them; every refusal says what to do.
//!
//! Everything attached is owned by file descriptors in [`Tracer`]: dropping
//! them, or the process dying in any way, detaches and unloads all of it.

use std::{collections::HashSet, fs, path::PathBuf, time::Instant};

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{Map, MapData, RingBuf},
    programs::ProgramError,
};
use caps::{CapSet, Capability, CapsHashSet};
use thiserror::Error;
use zombie_trace_common::{Filter, ORPHANS_MAX, Offsets, WAIT_ARGS_MAX};

use crate::{
    kernel::{
        btf::{Btf as KernelBtf, BtfBytes, Kind},
        maps::Probes,
        offsets::{self, OffsetError, VMLINUX_BTF},
        programs::{self, Hook},
        stacks::{self, StacksLoadError},
    },
    model::report::{Startup, WaitHooks},
};

/// The programs, built by build.rs (empty when the build skipped them).
static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/zombie-trace"));

/// Linux 5.8: ring buffers and `bpf_ktime_get_boot_ns`.
const MIN_KERNEL: (u32, u32) = (5, 8);

/// Linux 5.14: tracing programs may ask for the current task's cgroup
/// ancestors (`bpf_get_current_ancestor_cgroup_id`), which `--cgroup` needs.
const MIN_KERNEL_CGROUP: (u32, u32) = (5, 14);

/// The types aya looks up by name to attach the programs: the BTF
/// tracepoints' typedefs, and the functions traced on return where the
/// kernel has them.
const ATTACH_TYPES: [(&str, Kind); 5] = [
    ("btf_trace_sched_process_exit", Kind::Typedef),
    ("btf_trace_sched_process_free", Kind::Typedef),
    ("btf_trace_sched_process_exec", Kind::Typedef),
    ("kernel_wait4", Kind::Func),
    ("kernel_waitid", Kind::Func),
];

#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Stacks(#[from] StacksLoadError),
    #[error(
        "this zombie-trace binary was built without its eBPF programs (bpf-linker was missing or AYA_BUILD_SKIP was set); run `./x.sh build` (or `cargo xtask setup` then `cargo build --release`) and use that binary"
    )]
    NotBuilt,
    #[error(
        "zombie-trace needs root (or CAP_BPF and CAP_PERFMON) to load its kernel programs, and this process lacks {missing}: run it with sudo, or grant it (a systemd unit's CapabilityBoundingSet=, a container's --cap-add)"
    )]
    NoPrivileges { missing: &'static str },
    #[error(
        "kernel {release} is too old: zombie-trace needs Linux {}.{} or newer (ring buffers, BPF boot-time clock)",
        MIN_KERNEL.0,
        MIN_KERNEL.1
    )]
    KernelTooOld { release: String },
    #[error(
        "{VMLINUX_BTF} is missing: this kernel has no BTF type information, which zombie-trace needs; boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (the stock Debian, Ubuntu, RHEL 8.2+ and Fedora kernels are)"
    )]
    NoBtf,
    #[error(
        "--cgroup, --container, --pod and --namespace need Linux {}.{} or newer (older kernels do not let tracing programs ask for a task's cgroup); this kernel is {release}: filter with --ppid, --pid or --comm instead",
        MIN_KERNEL_CGROUP.0,
        MIN_KERNEL_CGROUP.1
    )]
    CgroupFilterUnsupported { release: String },
    #[error(transparent)]
    Offsets(#[from] OffsetError),
    #[error(
        "aya refused the BTF made for it with the ids of the kernel's tracepoints and functions: a zombie-trace bug, report this whole message"
    )]
    AttachTypes(#[source] aya::BtfError),
    #[error(
        "loading the eBPF programs failed (run as root; if the cause below still says 'operation not permitted', check kernel.unprivileged_bpf_disabled and the lockdown mode, else report this whole message)"
    )]
    Load(#[source] aya::EbpfError),
    #[error(
        "loading or attaching {program} failed (the kernel's reason follows; if it does not say what to do, report this whole message)"
    )]
    Attach {
        program: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error(
        "{WAIT_HOOKS_ENV}=trampolines, but this kernel refuses fexit trampolines on its wait functions (the reason follows); unset it to use the syscall tracepoints instead"
    )]
    TrampolinesRefused(#[source] Box<LoadError>),
    #[error("the loaded object lacks {0}: the binary is broken, rebuild it")]
    Missing(&'static str),
    #[error("opening map {name} failed: the binary is broken, rebuild it")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
}

/// The loaded, attached programs and the maps userspace reads. The ring
/// buffer and the logger are apart so that each can be handed to the
/// event loop.
pub struct Tracer {
    pub events: RingBuf<MapData>,
    /// eBPF-side log messages (`None` if the logger could not start).
    pub logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    pub probes: Probes,
}

pub struct Options {
    /// Ring buffer size in bytes (a power of two, multiple of the page size).
    pub ring_bytes: u32,
    /// What to trace (all zero: everything).
    pub filter: Filter,
    /// Every record streams to userspace (`--events`); else exits and
    /// reaps pair in the kernel.
    pub stream: bool,
    /// With `filter.cgroup_set`: the cgroups selected at start, in place
    /// before the programs attach.
    pub cgroups: Vec<u64>,
    /// Keep each new child's parent's stack at fork (`--stacks`).
    pub stacks: bool,
}

/// Whether this machine can run the programs `options` ask for.
fn check_machine(options: &Options) -> Result<(), LoadError> {
    if PROGRAMS.is_empty() {
        return Err(LoadError::NotBuilt);
    }
    if let Some(missing) = missing_privileges() {
        return Err(LoadError::NoPrivileges { missing });
    }
    let release = kernel_release();
    let version = parse_kernel_version(&release);
    if version.is_some_and(|v| v < MIN_KERNEL) {
        return Err(LoadError::KernelTooOld { release });
    }
    if !PathBuf::from(VMLINUX_BTF).exists() {
        return Err(LoadError::NoBtf);
    }
    let by_cgroup = options.filter.cgroup_id != 0 || options.filter.cgroup_set != 0;
    if by_cgroup && version.is_some_and(|v| v < MIN_KERNEL_CGROUP) {
        return Err(LoadError::CgroupFilterUnsupported { release });
    }
    Ok(())
}

pub fn load(options: &Options) -> Result<Tracer, LoadError> {
    check_machine(options)?;
    raise_memlock_limit();
    raise_nofile_limit();

    let compat = compat();
    let mut hooks = wait_hooks_wanted(compat);
    let started = Instant::now();
    // Mapped or read once, and only the few types wanted looked at: the
    // offsets, and the ids of those the programs attach to, for aya.
    let bytes = BtfBytes::read(VMLINUX_BTF).map_err(|_| LoadError::NoBtf)?;
    let kernel_btf = KernelBtf::parse(&bytes).map_err(OffsetError::Btf)?;
    let mut offsets = offsets::from_btf(&kernel_btf)?;
    let regs_args = if compat {
        None
    } else {
        offsets::regs_args(&kernel_btf)
    };
    match offsets::waitid_info(&kernel_btf) {
        Some([pid, status, cause]) => {
            offsets.waitid_info_pid = pid;
            offsets.waitid_info_status = status;
            offsets.waitid_info_cause = cause;
        }
        None if hooks == HooksWanted::Trampolines => {
            let missing = OffsetError::Missing("struct waitid_info".to_owned());
            return Err(LoadError::TrampolinesRefused(Box::new(missing.into())));
        }
        None => hooks = HooksWanted::Tracepoints,
    }
    // The oldest kernels' way in compat mode.
    let loop_helper = !compat && offsets::has_helper(&kernel_btf, "BPF_FUNC_loop");
    // The functions' ids are large (aya is handed a stand-in for each
    // type below them): only when trampolines will be tried.
    let wanted: Vec<(&str, Kind)> = ATTACH_TYPES
        .into_iter()
        .filter(|&(_, kind)| hooks != HooksWanted::Tracepoints || kind != Kind::Func)
        .collect();
    let btf = kernel_btf
        .aya_btf(&wanted)
        .map_err(LoadError::AttachTypes)?;
    let stacks_btf = if options.stacks {
        Some(stacks::attach_btf(&kernel_btf)?)
    } else {
        None
    };
    drop(kernel_btf);
    drop(bytes);
    let btf_time = started.elapsed();
    log::debug!("start-up: kernel BTF read and parsed in {btf_time:?}");
    if let Some(regs_args) = regs_args {
        offsets.regs_args = regs_args;
    }
    // Before it is known whether trampolines will do: the tracepoints'
    // layouts go into the programs' globals, fixed when they are made.
    let wait_tracing = match offsets::tracefs() {
        Some(tracefs) => offsets::add_wait_tracepoints(&mut offsets, &tracefs, regs_args.is_none())
            .map_err(|e| format!("{e}; check that tracefs is whole")),
        None => Err(
            "tracefs is not mounted and could not be mounted; mount it (mount -t tracefs nodev \
             /sys/kernel/tracing) and restart"
                .to_owned(),
        ),
    };
    let setup = Setup {
        options,
        btf: &btf,
        offsets: &offsets,
        args_from_regs: regs_args.is_some(),
        loop_helper,
        hooks,
        wait_tracing: &wait_tracing,
    };
    let tracer = if compat {
        load_with(&setup, false)
    } else {
        load_with(&setup, true).or_else(|e| {
            // Older verifiers refuse direct loads: the helper way then.
            log::debug!(
                "direct kernel reads refused, reading with bpf_probe_read_kernel: {}",
                with_causes(&e)
            );
            load_with(&setup, false)
        })
    };
    let mut tracer = tracer?;
    tracer.probes.startup.btf = btf_time;
    if let Some(btf) = &stacks_btf {
        tracer.probes.spawn_stacks = Some(stacks::load(&offsets, btf)?);
    }
    Ok(tracer)
}

/// What loading needs, whichever way kernel memory is read.
struct Setup<'a> {
    options: &'a Options,
    btf: &'a Btf,
    offsets: &'a Offsets,
    args_from_regs: bool,
    /// The kernel has `bpf_loop`.
    loop_helper: bool,
    hooks: HooksWanted,
    /// Why the wait syscall tracepoints cannot be used (no tracefs), if so.
    wait_tracing: &'a Result<(), String>,
}

/// Loads and attaches the programs, reading kernel memory with direct
/// loads or with the helper. With direct loads any refusal is an error, so
/// that the caller can try the helper way; else the wait programs may fail
/// alone, and the tracer runs without them.
fn load_with(setup: &Setup<'_>, direct_reads: bool) -> Result<Tracer, LoadError> {
    let started = Instant::now();
    let &Setup {
        options,
        offsets,
        args_from_regs,
        ..
    } = setup;
    let mut ebpf = EbpfLoader::new()
        .override_global("OFFSETS", offsets, true)
        .override_global("FILTER", &options.filter, true)
        .override_global("STREAM", &u32::from(options.stream), true)
        .override_global("ARGS_FROM_REGS", &u32::from(args_from_regs), true)
        .override_global("DIRECT_READS", &u32::from(direct_reads), true)
        .map_max_entries("EVENTS", options.ring_bytes)
        // Unused where the arguments are read at return: no need for its
        // 1.5 MB of preallocated kernel memory.
        .map_max_entries("WAIT_ARGS", if args_from_regs { 1 } else { WAIT_ARGS_MAX })
        .map_max_entries("ORPHANS", orphans_max())
        .load(PROGRAMS)
        .map_err(LoadError::Load)?;
    let mut cgroup_set: aya::maps::HashMap<MapData, u64, u8> = take_map(&mut ebpf, "CGROUP_SET")?;
    for id in &options.cgroups {
        cgroup_set
            .insert(id, &1, 0)
            .map_err(|source| LoadError::Map {
                name: "CGROUP_SET",
                source,
            })?;
    }
    // Started before attaching, so that no program message is missed.
    let logger = match aya_log::EbpfLogger::init(&mut ebpf) {
        Ok(logger) => Some(logger),
        Err(e) => {
            log::warn!("eBPF log messages will not be shown: {e}");
            None
        }
    };

    let maps = started.elapsed();
    log::debug!("start-up: maps made in {maps:?}");
    let mut times = Startup {
        load: maps,
        ..Startup::default()
    };
    let (wait_hooks, wait_tracing_error) =
        load_and_attach(&mut ebpf, setup, direct_reads, &mut times)?;
    log::debug!(
        "start-up: programs loaded and attached in {:?}",
        started.elapsed()
    );

    let events = take_map(&mut ebpf, "EVENTS")?;
    let counters = take_map(&mut ebpf, "COUNTERS")?;
    Ok(Tracer {
        events,
        logger,
        probes: Probes {
            counters,
            pending: take_map(&mut ebpf, "PENDING")?,
            handed: take_map(&mut ebpf, "HANDED")?,
            handed_here: HashSet::new(),
            wait_tally: take_map(&mut ebpf, "WAIT_TALLY")?,
            latency: take_map(&mut ebpf, "LATENCY")?,
            latency_by_comm: take_map(&mut ebpf, "LATENCY_BY_COMM")?,
            latency_by_reaper: take_map(&mut ebpf, "LATENCY_BY_REAPER")?,
            cgroup_set,
            orphans: take_map(&mut ebpf, "ORPHANS")?,
            commands: take_map(&mut ebpf, "COMMANDS")?,
            spawn_stacks: None,
            wait_tracing: wait_hooks.is_some(),
            wait_tracing_error,
            wait_hooks,
            startup: times,
            _ebpf: ebpf,
        },
    })
}

/// Room for [`ORPHANS_MAX`] orphans however many CPUs there are: an LRU
/// map keeps a free list per CPU, and evicts early when those take much of
/// it.
fn orphans_max() -> u32 {
    let cpus = aya::util::nr_cpus().map_or(1, u32::from);
    ORPHANS_MAX.max(cpus.saturating_mul(256))
}

fn take_map<M>(ebpf: &mut Ebpf, name: &'static str) -> Result<M, LoadError>
where
    M: TryFrom<Map, Error = aya::maps::MapError>,
{
    let map = ebpf.take_map(name).ok_or(LoadError::Missing(name))?;
    M::try_from(map).map_err(|source| LoadError::Map { name, source })
}

/// The wait calls' trampolines; they go together, or not at all.
const TRAMPOLINES: [Hook; 2] = [Hook::named("kernel_wait4"), Hook::named("kernel_waitid")];

/// The wait syscall tracepoints; the entry ones only when `entries` (the
/// return ones cannot read the arguments from `pt_regs`). Returns first:
/// attached in this order, a call that returns between two attaches does
/// not leave its arguments behind.
fn tracepoints(entries: bool) -> Vec<Hook> {
    let exits = ["sys_exit_wait4", "sys_exit_waitid"];
    let enters = ["sys_enter_wait4", "sys_enter_waitid"];
    exits
        .into_iter()
        .chain(enters.into_iter().filter(|_| entries))
        .map(Hook::named)
        .collect()
}

/// Loads and attaches every program; for the wait calls trampolines unless
/// unwanted or refused, else the syscall tracepoints. How wait calls run,
/// or why they do not (when that is not an error: see [`load_with`]).
fn load_and_attach(
    ebpf: &mut Ebpf,
    setup: &Setup<'_>,
    direct_reads: bool,
    times: &mut Startup,
) -> Result<(Option<WaitHooks>, Option<String>), LoadError> {
    let exit = |bounded| Hook {
        program: if bounded {
            "sched_process_exit_bounded"
        } else {
            "sched_process_exit"
        },
        target: "sched_process_exit",
    };
    let mut scheduler = [
        exit(!setup.loop_helper),
        Hook::named("sched_process_free"),
        Hook::named("sched_process_exec"),
    ];
    let trampolines = setup.hooks != HooksWanted::Tracepoints;
    let tracepoints = tracepoints(!setup.args_from_regs);
    for hook in scheduler
        .iter()
        .chain(&[exit(true)])
        .chain(&TRAMPOLINES)
        .chain(&tracepoints)
    {
        if ebpf.program(hook.program).is_none() {
            return Err(LoadError::Missing(hook.program));
        }
    }
    let mut wait: &[Hook] = match setup.wait_tracing {
        _ if trampolines => &TRAMPOLINES,
        Ok(()) => &tracepoints,
        Err(_) => &[],
    };
    // The costliest to verify first, so that the two at a time share the
    // work out evenly.
    let first: Vec<Hook> = wait.iter().chain(&scheduler).copied().collect();
    let mut loaded = load_timed(ebpf, setup.btf, &first, times);
    let mut scheduler_loaded = loaded.split_off(wait.len());
    if let [Err(e), ..] = &scheduler_loaded[..]
        && setup.loop_helper
    {
        // The bounded walk takes the verifier longer, but a kernel whose
        // verifier refuses the `bpf_loop` one may take it.
        log::debug!(
            "{} refused, loading {} instead: {e}",
            scheduler[0].program,
            exit(true).program
        );
        scheduler[0] = exit(true);
        scheduler_loaded.splice(..1, load_timed(ebpf, setup.btf, &scheduler[..1], times));
    }
    all_loaded(&scheduler, scheduler_loaded)?;
    attach_all(ebpf, &scheduler, times)?;
    let mut hooked = all_loaded(wait, loaded).and_then(|()| attach_all(ebpf, wait, times));
    if trampolines {
        match hooked {
            Ok(()) => return Ok((Some(WaitHooks::Trampolines), None)),
            Err(e) if setup.hooks == HooksWanted::Trampolines => {
                return Err(LoadError::TrampolinesRefused(Box::new(e)));
            }
            Err(e) => log::debug!(
                "trampolines refused, using the syscall tracepoints: {}",
                with_causes(&e)
            ),
        }
        for hook in &TRAMPOLINES {
            programs::unload(ebpf, hook);
        }
        wait = match setup.wait_tracing {
            Ok(()) => &tracepoints,
            Err(_) => &[],
        };
        let loaded = load_timed(ebpf, setup.btf, wait, times);
        hooked = all_loaded(wait, loaded).and_then(|()| attach_all(ebpf, wait, times));
    }
    match hooked {
        Ok(()) if wait.is_empty() => Ok((None, setup.wait_tracing.clone().err())),
        Ok(()) => Ok((Some(WaitHooks::Tracepoints), None)),
        Err(e) if direct_reads => Err(e),
        Err(e) => {
            // The kernel's reason (a verifier log) is long: for a bug
            // report, not for the warning.
            log::debug!("{}", with_causes(&e));
            Ok((
                None,
                Some(format!(
                    "{e}; RUST_LOG=zombie_trace=debug shows the kernel's reason"
                )),
            ))
        }
    }
}

/// [`programs::load`], its time added to `times`.
fn load_timed(
    ebpf: &mut Ebpf,
    btf: &Btf,
    hooks: &[Hook],
    times: &mut Startup,
) -> Vec<Result<(), ProgramError>> {
    let (loaded, took) = programs::load(ebpf, btf, hooks);
    times.load += took;
    loaded
}

/// The first of `hooks` that did not load, as an error.
fn all_loaded(hooks: &[Hook], loaded: Vec<Result<(), ProgramError>>) -> Result<(), LoadError> {
    hooks
        .iter()
        .zip(loaded)
        .try_for_each(|(hook, loaded)| loaded.map_err(|e| attach_error(hook, e)))
}

fn attach_all(ebpf: &mut Ebpf, hooks: &[Hook], times: &mut Startup) -> Result<(), LoadError> {
    let started = Instant::now();
    let attached = hooks
        .iter()
        .try_for_each(|hook| programs::attach(ebpf, hook).map_err(|e| attach_error(hook, e)));
    times.attach += started.elapsed();
    attached
}

fn attach_error(hook: &Hook, source: ProgramError) -> LoadError {
    LoadError::Attach {
        program: hook.program,
        source,
    }
}

/// How wait calls should be traced: `ZOMBIE_TRACE_WAIT_HOOKS`, else by
/// trampolines where the kernel allows them (but not in compat mode, whose
/// point is the oldest kernels' ways).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HooksWanted {
    Any,
    Trampolines,
    Tracepoints,
}

/// `ZOMBIE_TRACE_WAIT_HOOKS=tracepoints` traces wait calls by the syscall
/// tracepoints even where trampolines would do (to compare the two, or
/// round a kernel whose trampolines misbehave); `=trampolines` refuses to
/// start without them.
pub const WAIT_HOOKS_ENV: &str = "ZOMBIE_TRACE_WAIT_HOOKS";

fn wait_hooks_wanted(compat: bool) -> HooksWanted {
    hooks_wanted(std::env::var(WAIT_HOOKS_ENV).ok().as_deref(), compat)
}

/// What `ZOMBIE_TRACE_WAIT_HOOKS` (`value`, if set) asks for; unset, the
/// compat mode's way is the tracepoints (set, it wins).
fn hooks_wanted(value: Option<&str>, compat: bool) -> HooksWanted {
    match value {
        Some("trampolines") => HooksWanted::Trampolines,
        Some("tracepoints") => HooksWanted::Tracepoints,
        Some(value) => {
            log::warn!(
                "{WAIT_HOOKS_ENV}={value:?} ignored: it takes `trampolines` or `tracepoints`"
            );
            if compat {
                HooksWanted::Tracepoints
            } else {
                HooksWanted::Any
            }
        }
        None if compat => HooksWanted::Tracepoints,
        None => HooksWanted::Any,
    }
}

/// `ZOMBIE_TRACE_COMPAT=1`: the ways of the oldest supported kernels on
/// any kernel: kernel memory read with `bpf_probe_read_kernel`, and wait
/// calls traced by the syscall tracepoints, their arguments kept from
/// their entry. A way round a kernel where the
/// newer ways mislead, and how the tests cover the older ones anywhere.
pub const COMPAT_ENV: &str = "ZOMBIE_TRACE_COMPAT";

fn compat() -> bool {
    match std::env::var(COMPAT_ENV) {
        Ok(value) if value == "1" => true,
        Ok(value) => {
            log::warn!("{COMPAT_ENV}={value:?} ignored: the one value it takes is 1");
            false
        }
        Err(_) => false,
    }
}

/// An error and what caused it, on one line (a verifier's refusal is in
/// the causes).
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Root, or the capabilities that stand in for it for BPF tracing.
/// What this process lacks to load the programs, by its effective set.
fn missing_privileges() -> Option<&'static str> {
    match caps::read(None, CapSet::Effective) {
        Ok(effective) => missing_capabilities(&effective),
        // SAFETY: geteuid has no preconditions.
        Err(_) => (unsafe { libc::geteuid() } != 0).then_some("root"),
    }
}

/// `CAP_SYS_ADMIN` alone will do, or `CAP_BPF` with `CAP_PERFMON`.
fn missing_capabilities(effective: &CapsHashSet) -> Option<&'static str> {
    let has = |cap| effective.contains(&cap);
    match (
        has(Capability::CAP_SYS_ADMIN),
        has(Capability::CAP_BPF),
        has(Capability::CAP_PERFMON),
    ) {
        (true, _, _) | (false, true, true) => None,
        (false, true, false) => Some("CAP_PERFMON"),
        (false, false, true) => Some("CAP_BPF"),
        (false, false, false) => Some("CAP_BPF and CAP_PERFMON"),
    }
}

/// The soft limit of open files up to the hard one: `/proc` checks and
/// metrics clients must not run out.
fn raise_nofile_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointers to an rlimit for both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a valid pointer to an initialised rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        log::debug!(
            "raising RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}

pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// `(major, minor)` of a release string such as `6.18.44-fc-v669`.
pub fn parse_kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_capability_is_named() {
        let set = |caps: &[Capability]| caps.iter().copied().collect::<CapsHashSet>();
        use Capability::{CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN};
        assert_eq!(missing_capabilities(&set(&[CAP_SYS_ADMIN])), None);
        assert_eq!(missing_capabilities(&set(&[CAP_BPF, CAP_PERFMON])), None);
        assert_eq!(missing_capabilities(&set(&[CAP_BPF])), Some("CAP_PERFMON"));
        assert_eq!(missing_capabilities(&set(&[CAP_PERFMON])), Some("CAP_BPF"));
        assert_eq!(
            missing_capabilities(&set(&[])),
            Some("CAP_BPF and CAP_PERFMON")
        );
        let message = LoadError::NoPrivileges {
            missing: "CAP_PERFMON",
        }
        .to_string();
        assert!(
            message.contains("lacks CAP_PERFMON: run it with sudo"),
            "{message}"
        );
    }

    #[test]
    fn wait_hooks_as_asked() {
        use HooksWanted::{Any, Tracepoints, Trampolines};
        assert_eq!(hooks_wanted(None, false), Any);
        assert_eq!(hooks_wanted(None, true), Tracepoints);
        assert_eq!(hooks_wanted(Some("trampolines"), true), Trampolines);
        assert_eq!(hooks_wanted(Some("tracepoints"), false), Tracepoints);
        assert_eq!(hooks_wanted(Some("fexit"), false), Any);
        assert_eq!(hooks_wanted(Some(""), true), Tracepoints);
    }

    #[test]
    fn wait_returns_attach_before_entries() {
        let names = |entries| {
            tracepoints(entries)
                .iter()
                .map(|h| h.program)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(false), ["sys_exit_wait4", "sys_exit_waitid"]);
        assert_eq!(
            names(true),
            [
                "sys_exit_wait4",
                "sys_exit_waitid",
                "sys_enter_wait4",
                "sys_enter_waitid"
            ]
        );
    }

    #[test]
    fn parses_kernel_releases() {
        assert_eq!(parse_kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5.10.0-33-cloud-amd64"), Some((5, 10)));
        assert_eq!(parse_kernel_version("4.19"), Some((4, 19)));
        assert_eq!(parse_kernel_version("garbage"), None);
        assert_eq!(parse_kernel_version(""), None);
        assert!(parse_kernel_version("5.4.0").unwrap() < MIN_KERNEL);
        assert!(parse_kernel_version("5.8.0").unwrap() >= MIN_KERNEL);
    }
}
