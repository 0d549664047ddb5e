//! Where the kernel keeps what the programs read, on the kernel that runs.
//!
//! Rust eBPF has no CO-RE relocations, so struct offsets come from the
//! running kernel's BTF, and syscall tracepoint field offsets from tracefs
//! format files (layouts do change: RHEL adds to the common header, 6.16
//! moved fields). Both are handed to the programs as a load-time global.

use std::{
    fs,
    path::{Path, PathBuf},
};

use thiserror::Error;
use zombie_trace_common::Offsets;

use crate::kernel::btf::{Btf, BtfError, Struct};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, Error)]
pub enum OffsetError {
    #[error(
        "cannot read the kernel's BTF at {VMLINUX_BTF}: {0}; zombie-trace needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian, Ubuntu, RHEL 8.2+ and Fedora kernels have it)"
    )]
    Btf(BtfError),
    #[error(
        "the kernel's BTF has no {0}: this kernel is not one zombie-trace supports (Linux 5.8 or newer with BTF)"
    )]
    Missing(String),
    #[error("cannot read tracepoint format {path}: {source}")]
    Format {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tracepoint format {path} has no field `{field}`")]
    FormatField { path: PathBuf, field: String },
}

/// Struct offsets from BTF; the tracepoint fields stay zero until
/// [`add_wait_tracepoints`] fills them in.
pub fn from_btf(btf: &Btf<'_>) -> Result<Offsets, OffsetError> {
    from_layout(btf)
}

/// Where the kernel's struct layouts are read: its BTF, and in the tests
/// also btf-rs's reading of it, which this one must agree with.
trait Layout {
    type Struct;
    fn find_struct(&self, name: &str) -> Option<Self::Struct>;
    fn member_offset(&self, st: &Self::Struct, field: &str) -> Option<u32>;
    fn size(&self, st: &Self::Struct) -> u32;
    fn has_helper(&self, helper: &str) -> bool;
}

impl<'a> Layout for Btf<'a> {
    type Struct = Struct<'a>;

    fn find_struct(&self, name: &str) -> Option<Struct<'a>> {
        Btf::find_struct(self, name)
    }

    fn member_offset(&self, st: &Struct<'a>, field: &str) -> Option<u32> {
        Btf::member_offset(self, st, field)
    }

    fn size(&self, st: &Struct<'a>) -> u32 {
        st.size()
    }

    fn has_helper(&self, helper: &str) -> bool {
        has_helper(self, helper)
    }
}

fn from_layout<L: Layout>(btf: &L) -> Result<Offsets, OffsetError> {
    let task = find_struct(btf, "task_struct")?;
    let signal = find_struct(btf, "signal_struct")?;
    let sighand = find_struct(btf, "sighand_struct")?;
    let k_sigaction = find_struct(btf, "k_sigaction")?;
    let sigaction = find_struct(btf, "sigaction")?;
    let pid = find_struct(btf, "pid")?;
    let mm = find_struct(btf, "mm_struct")?;
    let bprm = find_struct(btf, "linux_binprm")?;
    let t = |field| member_offset(btf, &task, "task_struct", field);
    Ok(Offsets {
        task_pid: t("pid")?,
        task_tgid: t("tgid")?,
        task_real_parent: t("real_parent")?,
        task_group_leader: t("group_leader")?,
        task_start_boottime: t("start_boottime")?,
        task_exit_code: t("exit_code")?,
        task_exit_signal: t("exit_signal")?,
        task_ptrace: t("ptrace")?,
        task_comm: t("comm")?,
        task_signal: t("signal")?,
        task_sighand: t("sighand")?,
        task_thread_pid: t("thread_pid")?,
        // Only an optimisation rests on it (see EXIT_PARENT_CGROUPS).
        task_cgroups: t("cgroups").unwrap_or(0),
        task_children: t("children")?,
        task_sibling: t("sibling")?,
        task_exit_state: t("exit_state")?,
        pid_level: member_offset(btf, &pid, "pid", "level")?,
        // `live` is an atomic_t, whose counter is its first member.
        signal_live: member_offset(btf, &signal, "signal_struct", "live")?,
        signal_flags: member_offset(btf, &signal, "signal_struct", "flags")?,
        signal_group_exit_code: member_offset(btf, &signal, "signal_struct", "group_exit_code")?,
        sighand_action: member_offset(btf, &sighand, "sighand_struct", "action")?,
        k_sigaction_size: btf.size(&k_sigaction),
        // `k_sigaction.sa` is its first member on every architecture.
        sigaction_handler: member_offset(btf, &sigaction, "sigaction", "sa_handler")?,
        sigaction_flags: member_offset(btf, &sigaction, "sigaction", "sa_flags")?,
        task_mm: t("mm")?,
        mm_arg_start: member_offset(btf, &mm, "mm_struct", "arg_start")?,
        mm_arg_end: member_offset(btf, &mm, "mm_struct", "arg_end")?,
        bprm_filename: member_offset(btf, &bprm, "linux_binprm", "filename")?,
        ..Offsets::default()
    })
}

/// Where `struct pt_regs` keeps a syscall's first four arguments, if the
/// return program can read them there: the kernel has `bpf_task_pt_regs`
/// (5.15+) and the architecture keeps them through the call. The loader
/// runs on the kernel's architecture, so its own is the one to know.
pub fn regs_args(btf: &Btf<'_>) -> Option<[u32; 4]> {
    regs_args_from(btf)
}

fn regs_args_from<L: Layout>(btf: &L) -> Option<[u32; 4]> {
    if !btf.has_helper("BPF_FUNC_task_pt_regs") {
        return None;
    }
    let regs = btf.find_struct("pt_regs")?;
    let at = |field| btf.member_offset(&regs, field);
    if cfg!(target_arch = "x86_64") {
        // The syscall convention: rdi, rsi, rdx, r10, left as they were.
        Some([at("di")?, at("si")?, at("dx")?, at("r10")?])
    } else if cfg!(target_arch = "aarch64") {
        // x0 to x3; x0 holds the result by the return, and the kernel keeps
        // the first argument in `orig_x0`. x1 to x3 are `regs[1..4]`, the
        // start of the struct (the ABI's `user_pt_regs`).
        Some([at("orig_x0")?, 8, 16, 24])
    } else {
        None
    }
}

/// `struct waitid_info`'s `pid`, `status` and `cause`: what the wait
/// trampolines read at `kernel_waitid`'s return.
pub fn waitid_info(btf: &Btf<'_>) -> Option<[u32; 3]> {
    let info = btf.find_struct("waitid_info")?;
    let at = |field| btf.member_offset(&info, field);
    Some([at("pid")?, at("status")?, at("cause")?])
}

/// Whether the kernel's `enum bpf_func_id` names `helper`.
pub fn has_helper(btf: &Btf<'_>, helper: &str) -> bool {
    btf.has_enumerator("bpf_func_id", helper)
}

fn find_struct<L: Layout>(btf: &L, name: &str) -> Result<L::Struct, OffsetError> {
    btf.find_struct(name)
        .ok_or_else(|| OffsetError::Missing(format!("struct {name}")))
}

fn member_offset<L: Layout>(
    btf: &L,
    st: &L::Struct,
    owner: &str,
    field: &str,
) -> Result<u32, OffsetError> {
    btf.member_offset(st, field)
        .ok_or_else(|| OffsetError::Missing(format!("{owner}.{field}")))
}

/// The tracefs directory with `events/`, mounting tracefs if it is not
/// (a fresh machine often has it unmounted). `None` when there is none.
pub fn tracefs() -> Option<PathBuf> {
    const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
    let found = || {
        CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.join("events").is_dir())
    };
    if let Some(dir) = found() {
        return Some(dir);
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: NUL-terminated constant strings; mount(2) has no other inputs.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        log::debug!("mounting tracefs: {}", std::io::Error::last_os_error());
    }
    found()
}

/// Fill in the syscall tracepoint field offsets from their format files.
/// Those of the entry tracepoints only when `entries` (the arguments are
/// not read from `pt_regs`).
pub fn add_wait_tracepoints(
    offsets: &mut Offsets,
    tracefs: &Path,
    entries: bool,
) -> Result<(), OffsetError> {
    let events = tracefs.join("events/syscalls");
    if entries {
        let enter_wait4 = read_format(&events.join("sys_enter_wait4/format"))?;
        let enter_waitid = read_format(&events.join("sys_enter_waitid/format"))?;
        offsets.wait4_upid = enter_wait4.field("upid")?;
        offsets.wait4_stat_addr = enter_wait4.field("stat_addr")?;
        offsets.wait4_options = enter_wait4.field("options")?;
        offsets.waitid_which = enter_waitid.field("which")?;
        offsets.waitid_upid = enter_waitid.field("upid")?;
        offsets.waitid_infop = enter_waitid.field("infop")?;
        offsets.waitid_options = enter_waitid.field("options")?;
    }
    let exit_wait4 = read_format(&events.join("sys_exit_wait4/format"))?;
    offsets.sys_exit_ret = exit_wait4.field("ret")?;
    let exit_waitid = read_format(&events.join("sys_exit_waitid/format"))?;
    if exit_waitid.field("ret")? != offsets.sys_exit_ret {
        return Err(OffsetError::FormatField {
            path: exit_waitid.path,
            field: "ret (at the same offset as in sys_exit_wait4)".into(),
        });
    }
    Ok(())
}

struct Format {
    path: PathBuf,
    text: String,
}

fn read_format(path: &Path) -> Result<Format, OffsetError> {
    let text = fs::read_to_string(path).map_err(|source| OffsetError::Format {
        path: path.to_owned(),
        source,
    })?;
    Ok(Format {
        path: path.to_owned(),
        text,
    })
}

impl Format {
    fn field(&self, name: &str) -> Result<u32, OffsetError> {
        parse_field_offset(&self.text, name).ok_or_else(|| OffsetError::FormatField {
            path: self.path.clone(),
            field: name.to_owned(),
        })
    }
}

/// The `offset:` of the field called `name` in a tracefs format file, whose
/// lines read `field:<C declaration> name; offset:N; size:N; signed:N;`.
fn parse_field_offset(format: &str, name: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let mut parts = line.trim().split(';').map(str::trim);
        let decl = parts.next()?.strip_prefix("field:")?;
        let decl_name = decl.rsplit([' ', '*']).next()?;
        // Array fields read `char comm[16]`.
        let decl_name = decl_name.split('[').next()?;
        if decl_name != name {
            return None;
        }
        parts.find_map(|p| p.strip_prefix("offset:")?.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use btf_rs::{BtfType, Type};

    use super::*;
    use crate::kernel::btf::BtfBytes;

    const WAIT4: &str = "name: sys_enter_wait4
ID: 820
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:pid_t upid;\toffset:16;\tsize:8;\tsigned:0;
\tfield:int * stat_addr;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int options;\toffset:32;\tsize:8;\tsigned:0;
\tfield:struct rusage * ru;\toffset:40;\tsize:8;\tsigned:0;

print fmt: \"upid: 0x%08lx\"
";

    #[test]
    fn parses_syscall_format_fields() {
        assert_eq!(parse_field_offset(WAIT4, "upid"), Some(16));
        assert_eq!(parse_field_offset(WAIT4, "stat_addr"), Some(24));
        assert_eq!(parse_field_offset(WAIT4, "options"), Some(32));
        assert_eq!(parse_field_offset(WAIT4, "ru"), Some(40));
        assert_eq!(parse_field_offset(WAIT4, "common_pid"), Some(4));
    }

    #[test]
    fn does_not_match_field_name_suffixes_or_absent_fields() {
        assert_eq!(parse_field_offset(WAIT4, "pid"), None);
        assert_eq!(parse_field_offset(WAIT4, "addr"), None);
        assert_eq!(parse_field_offset(WAIT4, "missing"), None);
    }

    #[test]
    fn tolerates_odd_formats() {
        assert_eq!(parse_field_offset("", "upid"), None);
        assert_eq!(parse_field_offset("field:\n;;;", "upid"), None);
        assert_eq!(
            parse_field_offset("\tfield:pid_t upid;\toffset:not-a-number;", "upid"),
            None
        );
        assert_eq!(
            parse_field_offset("\tfield:char comm[16];\toffset:8;\tsize:16;", "comm"),
            Some(8)
        );
    }

    /// The running kernel's BTF, or `None` (the test is skipped) without.
    fn kernel_btf() -> Option<BtfBytes> {
        let bytes = BtfBytes::read(VMLINUX_BTF);
        if bytes.is_err() {
            eprintln!("no {VMLINUX_BTF}: skipped");
        }
        bytes.ok()
    }

    #[test]
    fn running_kernel_btf_has_every_field() {
        let Some(bytes) = kernel_btf() else { return };
        let btf = Btf::parse(&bytes).expect("this kernel's BTF");
        let o = from_btf(&btf).expect("offsets from this kernel's BTF");
        assert!(o.task_tgid > o.task_pid || o.task_pid > 0);
        assert!(o.k_sigaction_size >= 24);
        assert_eq!(o.sigaction_handler, 0);
    }

    #[test]
    fn running_kernel_btf_has_waitid_info() {
        let Some(bytes) = kernel_btf() else { return };
        let btf = Btf::parse(&bytes).expect("this kernel's BTF");
        let info = btf.find_struct("waitid_info").expect("struct waitid_info");
        let at = |field| btf.member_offset(&info, field);
        // pid_t pid; uid_t uid; int status; int cause;
        assert_eq!(
            [at("pid"), at("status"), at("cause")],
            [Some(0), Some(8), Some(12)]
        );
    }

    /// The offsets btf-rs gave, from which this reader must not differ.
    #[test]
    fn same_offsets_as_btf_rs() {
        let Some(bytes) = kernel_btf() else { return };
        let btf = Btf::parse(&bytes).expect("this kernel's BTF");
        let reference = btf_rs::Btf::from_bytes(&bytes).expect("btf-rs reading this kernel's BTF");
        assert_eq!(
            from_btf(&btf).expect("offsets"),
            from_layout(&reference).expect("btf-rs offsets")
        );
        assert_eq!(regs_args(&btf), regs_args_from(&reference));
        let (info, reference_info) = (
            btf.find_struct("waitid_info").expect("struct waitid_info"),
            Layout::find_struct(&reference, "waitid_info").expect("btf-rs struct waitid_info"),
        );
        for field in ["pid", "status", "cause"] {
            assert_eq!(
                btf.member_offset(&info, field),
                reference.member_offset(&reference_info, field),
                "{field}"
            );
        }
    }

    /// btf-rs's reading, as offsets.rs did it before `kernel::btf`.
    impl Layout for btf_rs::Btf {
        type Struct = btf_rs::Struct;

        fn find_struct(&self, name: &str) -> Option<btf_rs::Struct> {
            self.resolve_types_by_name(name)
                .ok()?
                .into_iter()
                .find_map(|t| match t {
                    Type::Struct(s) if !s.members.is_empty() => Some(s),
                    _ => None,
                })
        }

        fn member_offset(&self, st: &btf_rs::Struct, field: &str) -> Option<u32> {
            find_member_bits(self, st, field, 0).map(|bits| bits / 8)
        }

        fn size(&self, st: &btf_rs::Struct) -> u32 {
            st.size() as u32
        }

        fn has_helper(&self, helper: &str) -> bool {
            let Ok(types) = self.resolve_types_by_name("bpf_func_id") else {
                return false;
            };
            types.iter().any(|t| match t {
                Type::Enum(e) => e
                    .members
                    .iter()
                    .any(|m| self.resolve_name(m).is_ok_and(|name| name == helper)),
                _ => false,
            })
        }
    }

    fn find_member_bits(
        btf: &btf_rs::Btf,
        st: &btf_rs::Struct,
        field: &str,
        depth: u32,
    ) -> Option<u32> {
        if depth > 8 {
            return None;
        }
        for member in &st.members {
            let name = btf.resolve_name(member).unwrap_or_default();
            if name == field {
                return Some(member.bit_offset());
            }
            if name.is_empty() {
                let inner = match resolve_through_modifiers(btf, member)? {
                    Type::Struct(s) | Type::Union(s) => s,
                    _ => continue,
                };
                if let Some(bits) = find_member_bits(btf, &inner, field, depth + 1) {
                    return Some(member.bit_offset() + bits);
                }
            }
        }
        None
    }

    fn resolve_through_modifiers(btf: &btf_rs::Btf, member: &dyn BtfType) -> Option<Type> {
        let mut ty = btf.resolve_chained_type(member).ok()?;
        for _ in 0..8 {
            match &ty {
                Type::Typedef(t) => ty = btf.resolve_chained_type(t).ok()?,
                Type::Const(t) | Type::Volatile(t) | Type::Restrict(t) => {
                    ty = btf.resolve_chained_type(t).ok()?;
                }
                _ => return Some(ty),
            }
        }
        None
    }
}
