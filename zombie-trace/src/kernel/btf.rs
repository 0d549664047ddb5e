//! The kernel's BTF, read in place: one pass records where each type
//! starts, and the few questions start-up asks are answered from the raw
//! bytes. Parsing all 100k+ types into owned values (btf-rs, aya) took
//! 100+ ms of every start for some twenty offsets and five type ids.
//!
//! Every read is bounds-checked: any bytes give an answer or an error,
//! never a panic (fuzz/fuzz_targets/btf.rs).

use std::{
    fs::File,
    io::{self, Read as _},
    ops::Deref,
    os::fd::AsRawFd as _,
    path::Path,
    ptr::NonNull,
};

use thiserror::Error;

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;
/// `name_off`, `info`, `size`/`type`: what every type starts with.
const TYPE_LEN: usize = 12;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// How deep anonymous members and modifier chains are followed: the
/// kernel's nest two or three deep, and a loop in odd data must end.
const MAX_DEPTH: u32 = 8;
/// Members looked at in one member search: with [`MAX_DEPTH`] alone,
/// anonymous members that each hold the struct again would take forever.
const MEMBER_BUDGET: u32 = 1 << 16;

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("it is {0} bytes long, shorter than a BTF header")]
    Short(usize),
    #[error("it is big-endian BTF, which zombie-trace does not read")]
    BigEndian,
    #[error("it does not start with the BTF magic number")]
    Magic,
    #[error("it is BTF version {0}, not the version 1 that zombie-trace reads")]
    Version(u8),
    #[error("its header gives sections outside its {0} bytes")]
    Sections(usize),
    #[error("type {id} is cut short")]
    Truncated { id: usize },
    #[error("type {id} has kind {kind}, which zombie-trace does not know")]
    Kind { id: usize, kind: u32 },
}

/// The kinds of the types that aya finds by name (see [`Btf::aya_btf`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Typedef,
    Func,
}

impl Kind {
    fn raw(self) -> u32 {
        match self {
            Self::Typedef => KIND_TYPEDEF,
            Self::Func => KIND_FUNC,
        }
    }
}

/// The bytes of a BTF file: mapped where the kernel allows it (Linux 6.16+
/// for /sys/kernel/btf), which costs no copy; else read.
pub struct BtfBytes(Storage);

enum Storage {
    Mapped { ptr: NonNull<u8>, len: usize },
    Read(Vec<u8>),
}

impl BtfBytes {
    pub fn read(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let mut file = File::open(path)?;
        let len = usize::try_from(file.metadata()?.len()).unwrap_or(0);
        // SAFETY: a fresh mapping (no address asked for) of an open file,
        // read-only; the result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr != libc::MAP_FAILED
            && let Some(ptr) = NonNull::new(ptr.cast::<u8>())
        {
            return Ok(Self(Storage::Mapped { ptr, len }));
        }
        log::debug!(
            "{} cannot be mapped ({}), reading it",
            path.display(),
            io::Error::last_os_error()
        );
        let mut bytes = Vec::with_capacity(len);
        file.read_to_end(&mut bytes)?;
        Ok(Self(Storage::Read(bytes)))
    }
}

impl Deref for BtfBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            // SAFETY: `len` bytes mapped readable at `ptr` until drop; the
            // mapping is private and the kernel's BTF never changes, so
            // nothing writes them while they are borrowed.
            Storage::Mapped { ptr, len } => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr(), *len)
            },
            Storage::Read(bytes) => bytes,
        }
    }
}

impl Drop for BtfBytes {
    fn drop(&mut self) {
        if let Storage::Mapped { ptr, len } = self.0 {
            // SAFETY: the mapping made in `read`, unmapped once; no borrow
            // of it outlives `self`.
            unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
        }
    }
}

/// A BTF blob with the start of each type recorded, by type id.
pub struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Where each type starts in `types`; index 0 (void) is unused.
    starts: Vec<u32>,
}

/// A type as it lies in the blob.
#[derive(Clone, Copy)]
struct Entry<'a> {
    info: u32,
    /// The size, or the id of the type referred to, by kind.
    size_or_type: u32,
    /// The members, enumerators, parameters or other data after it.
    trailer: &'a [u8],
}

impl Entry<'_> {
    fn kind(&self) -> u32 {
        (self.info >> 24) & 0x1f
    }

    fn vlen(&self) -> usize {
        (self.info & 0xffff) as usize
    }

    fn kind_flag(&self) -> bool {
        self.info >> 31 == 1
    }
}

/// A struct with members, as [`Btf::find_struct`] finds it.
#[derive(Clone, Copy)]
pub struct Struct<'a>(Entry<'a>);

impl Struct<'_> {
    /// Its size in bytes.
    pub fn size(&self) -> u32 {
        self.0.size_or_type
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    Some(u32::from_le_bytes(bytes.get(at..end)?.try_into().ok()?))
}

/// The bytes of what follows a type of this kind with this `vlen`; `None`
/// for a kind this reader does not know.
fn trailer_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
        KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
        _ => return None,
    })
}

impl<'a> Btf<'a> {
    /// Checks the header and records where every type starts.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, BtfError> {
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or(BtfError::Short(bytes.len()))?;
        match u16::from_le_bytes([header[0], header[1]]) {
            MAGIC => {}
            m if m == MAGIC.swap_bytes() => return Err(BtfError::BigEndian),
            _ => return Err(BtfError::Magic),
        }
        if header[2] != 1 {
            return Err(BtfError::Version(header[2]));
        }
        let field = |at| u32_at(header, at).map_or(0, |v| v as usize);
        let hdr_len = field(4);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            bytes.get(start..start.checked_add(len)?)
        };
        let sections = || BtfError::Sections(bytes.len());
        if hdr_len < HEADER_LEN {
            return Err(sections());
        }
        let types = section(field(8), field(12)).ok_or_else(sections)?;
        let strings = section(field(16), field(20)).ok_or_else(sections)?;

        // Kernel types average some 40 bytes: room for them all at once.
        let mut starts = Vec::with_capacity(types.len() / 32 + 1);
        starts.push(0);
        let mut at = 0;
        while at < types.len() {
            let id = starts.len();
            let info = u32_at(types, at + 4).ok_or(BtfError::Truncated { id })?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let trailer = trailer_len(kind, vlen).ok_or(BtfError::Kind { id, kind })?;
            let end = at + TYPE_LEN + trailer;
            if end > types.len() {
                return Err(BtfError::Truncated { id });
            }
            // `types` is at most u32::MAX long: its length is a u32.
            starts.push(at as u32);
            at = end;
        }
        Ok(Self {
            types,
            strings,
            starts,
        })
    }

    /// The type with this id; `None` for void (0) and ids beyond the last.
    fn entry(&self, id: u32) -> Option<Entry<'a>> {
        if id == 0 {
            return None;
        }
        let at = *self.starts.get(id as usize)? as usize;
        let info = u32_at(self.types, at + 4)?;
        let len = trailer_len((info >> 24) & 0x1f, (info & 0xffff) as usize)?;
        Some(Entry {
            info,
            size_or_type: u32_at(self.types, at + 8)?,
            trailer: self.types.get(at + TYPE_LEN..at + TYPE_LEN + len)?,
        })
    }

    /// Whether the string at `off` is `name`.
    fn name_is(&self, off: u32, name: &str) -> bool {
        let name = name.as_bytes();
        self.strings
            .get(off as usize..)
            .and_then(|tail| tail.get(..=name.len()))
            .is_some_and(|s| s[..name.len()] == *name && s[name.len()] == 0)
    }

    /// The ids and info words of all types, skipping void.
    fn infos(&self) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
        self.starts
            .iter()
            .enumerate()
            .skip(1)
            .filter_map(|(id, &at)| {
                let at = at as usize;
                Some((
                    id as u32,
                    u32_at(self.types, at)?,
                    u32_at(self.types, at + 4)?,
                ))
            })
    }

    /// The types of `kind` called `name`, with their ids, in id order.
    fn named<'s>(
        &'s self,
        name: &'s str,
        kind: u32,
    ) -> impl Iterator<Item = (u32, Entry<'a>)> + 's {
        self.infos()
            .filter(move |&(_, name_off, info)| {
                (info >> 24) & 0x1f == kind && self.name_is(name_off, name)
            })
            .filter_map(|(id, ..)| Some((id, self.entry(id)?)))
    }

    /// The id of the first type of each wanted kind and name, in one pass.
    pub fn ids_by_name(&self, wanted: &[(&str, Kind)]) -> Vec<Option<u32>> {
        let mut ids = vec![None; wanted.len()];
        for (id, name_off, info) in self.infos() {
            let kind = (info >> 24) & 0x1f;
            for (found, &(name, want)) in ids.iter_mut().zip(wanted) {
                if found.is_none() && want.raw() == kind && self.name_is(name_off, name) {
                    *found = Some(id);
                }
            }
        }
        ids
    }

    /// `struct name` with its members (the kernel's BTF also has empty
    /// ones, and forward declarations).
    pub fn find_struct(&self, name: &str) -> Option<Struct<'a>> {
        self.named(name, KIND_STRUCT)
            .map(|(_, entry)| entry)
            .find(|entry| entry.vlen() > 0)
            .map(Struct)
    }

    /// The byte offset of `field` in `st`, looking into anonymous structs
    /// and unions (task_struct keeps some fields in them on some configs).
    pub fn member_offset(&self, st: &Struct<'_>, field: &str) -> Option<u32> {
        let mut budget = MEMBER_BUDGET;
        self.member_bits(&st.0, field, 0, &mut budget)
            .map(|bits| bits / 8)
    }

    fn member_bits(
        &self,
        st: &Entry<'_>,
        field: &str,
        depth: u32,
        budget: &mut u32,
    ) -> Option<u32> {
        if depth > MAX_DEPTH {
            return None;
        }
        for member in st.trailer.as_chunks::<12>().0 {
            *budget = budget.checked_sub(1)?;
            let offset = u32_at(member, 8)?;
            // With the kind flag the top byte is a bitfield's size.
            let bits = if st.kind_flag() {
                offset & 0xff_ffff
            } else {
                offset
            };
            let name_off = u32_at(member, 0)?;
            if self.name_is(name_off, field) {
                return Some(bits);
            }
            if !self.name_is(name_off, "") {
                continue;
            }
            let Some(inner) = self.resolve_modifiers(u32_at(member, 4)?) else {
                continue;
            };
            if !matches!(inner.kind(), KIND_STRUCT | KIND_UNION) {
                continue;
            }
            if let Some(inner_bits) = self.member_bits(&inner, field, depth + 1, budget) {
                return bits.checked_add(inner_bits);
            }
        }
        None
    }

    /// The type `id` refers to once typedefs and qualifiers are looked
    /// through.
    fn resolve_modifiers(&self, mut id: u32) -> Option<Entry<'a>> {
        for _ in 0..=MAX_DEPTH {
            let entry = self.entry(id)?;
            match entry.kind() {
                KIND_TYPEDEF | KIND_CONST | KIND_VOLATILE | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = entry.size_or_type;
                }
                _ => return Some(entry),
            }
        }
        None
    }

    /// Whether `enum enum_name` has an enumerator called `enumerator`.
    pub fn has_enumerator(&self, enum_name: &str, enumerator: &str) -> bool {
        let named = |kind, len| {
            self.named(enum_name, kind).any(move |(_, entry)| {
                entry
                    .trailer
                    .chunks_exact(len)
                    .any(|e| u32_at(e, 0).is_some_and(|off| self.name_is(off, enumerator)))
            })
        };
        named(KIND_ENUM, 8) || named(KIND_ENUM64, 12)
    }

    /// An aya `Btf` in which the `wanted` types have the ids they have
    /// here, for aya's program loaders, which only look up ids by name and
    /// kind. Every other type up to the last wanted one is a bare pointer
    /// to void, so that aya parses a few 12-byte entries and not the whole
    /// kernel's types. Wanted types that are absent are left out.
    pub fn aya_btf(&self, wanted: &[(&str, Kind)]) -> Result<aya::Btf, aya::BtfError> {
        let found: Vec<_> = self
            .ids_by_name(wanted)
            .into_iter()
            .zip(wanted)
            .filter_map(|(id, &(name, kind))| Some((id?, name, kind)))
            .collect();
        let count = found.iter().map(|&(id, ..)| id).max().unwrap_or(0) as usize;
        let mut strings = vec![0];
        let mut types = Vec::with_capacity(count * TYPE_LEN);
        let placeholder = KIND_PTR << 24;
        for _ in 0..count {
            for word in [0, placeholder, 0] {
                types.extend_from_slice(&u32::to_ne_bytes(word));
            }
        }
        for &(id, name, kind) in &found {
            let at = (id as usize - 1) * TYPE_LEN;
            let name_off = strings.len() as u32;
            strings.extend_from_slice(name.as_bytes());
            strings.push(0);
            // A static function (linkage 0 in vlen) or a typedef of void:
            // aya reads no more than the name and kind.
            types[at..at + 4].copy_from_slice(&name_off.to_ne_bytes());
            types[at + 4..at + 8].copy_from_slice(&(kind.raw() << 24).to_ne_bytes());
        }
        let mut blob = Vec::with_capacity(HEADER_LEN + types.len() + strings.len());
        blob.extend_from_slice(&MAGIC.to_ne_bytes());
        blob.extend_from_slice(&[1, 0]);
        for word in [
            HEADER_LEN as u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            blob.extend_from_slice(&word.to_ne_bytes());
        }
        blob.extend_from_slice(&types);
        blob.extend_from_slice(&strings);
        aya::Btf::parse(&blob, aya::Endianness::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

    /// A little-endian BTF blob of these type words and strings.
    fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let type_len = types.len() as u32 * 4;
        let mut b = vec![0x9f, 0xeb, 1, 0];
        for word in [24, 0, type_len, type_len, strings.len() as u32] {
            b.extend_from_slice(&word.to_le_bytes());
        }
        for word in types {
            b.extend_from_slice(&word.to_le_bytes());
        }
        b.extend_from_slice(strings);
        b
    }

    const fn info(kind: u32, vlen: u32) -> u32 {
        kind << 24 | vlen
    }

    /// `struct s { int a; const union_t; }` where `union_t` is a typedef
    /// of `union { int b; struct { int c; }; }` at byte 4, and
    /// `enum e { E1, E2 }`.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0s\0a\0union_t\0b\0c\0e\0E1\0E2\0";
        let at = |name: &[u8]| {
            strings
                .windows(name.len() + 2)
                .position(|w| w[0] == 0 && &w[1..=name.len()] == name && w[name.len() + 1] == 0)
                .unwrap() as u32
                + 1
        };
        #[rustfmt::skip]
        let types = [
            // 1: int
            at(b"int"), info(KIND_INT, 0), 4, 32,
            // 2: struct s
            at(b"s"), info(KIND_STRUCT, 2), 16,
            at(b"a"), 1, 0,
            0, 3, 32,
            // 3: const union_t
            0, info(KIND_CONST, 0), 4,
            // 4: typedef union_t
            at(b"union_t"), info(KIND_TYPEDEF, 0), 5,
            // 5: union { int b; struct { int c; }; } (offsets in bits)
            0, info(KIND_UNION, 2), 4,
            at(b"b"), 1, 0,
            0, 6, 0,
            // 6: struct { int c; } with the kind flag: a 32-bit field
            0, info(KIND_STRUCT, 1) | 1 << 31, 4,
            at(b"c"), 1, 32 << 24,
            // 7: enum e
            at(b"e"), info(KIND_ENUM, 2), 4,
            at(b"E1"), 0,
            at(b"E2"), 1,
            // 8: an empty struct s, as the kernel's BTF has
            at(b"s"), info(KIND_STRUCT, 0), 0,
        ];
        blob(&types, strings)
    }

    #[test]
    fn finds_members_through_anonymous_members_and_modifiers() {
        let bytes = sample();
        let btf = Btf::parse(&bytes).unwrap();
        let s = btf.find_struct("s").unwrap();
        assert_eq!(s.size(), 16);
        assert_eq!(btf.member_offset(&s, "a"), Some(0));
        assert_eq!(btf.member_offset(&s, "b"), Some(4));
        assert_eq!(btf.member_offset(&s, "c"), Some(4));
        assert_eq!(btf.member_offset(&s, "d"), None);
        assert!(btf.find_struct("int").is_none());
        assert!(btf.has_enumerator("e", "E2"));
        assert!(!btf.has_enumerator("e", "E"));
        assert!(!btf.has_enumerator("s", "a"));
        assert_eq!(
            btf.ids_by_name(&[("union_t", Kind::Typedef), ("union_t", Kind::Func)]),
            [Some(4), None]
        );
    }

    #[test]
    fn refuses_odd_data() {
        let good = sample();
        let parse = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = good.clone();
            f(&mut bytes);
            Btf::parse(&bytes).err().map(|e| e.to_string())
        };
        assert!(parse(&|_| ()).is_none());
        assert!(parse(&|b| b.truncate(23)).unwrap().contains("shorter"));
        assert!(parse(&|b| b.swap(0, 1)).unwrap().contains("big-endian"));
        assert!(parse(&|b| b[0] = 0).unwrap().contains("magic"));
        assert!(parse(&|b| b[2] = 2).unwrap().contains("version 2"));
        assert!(parse(&|b| b[4] = 23).unwrap().contains("outside"));
        assert!(parse(&|b| b[20] = 0xff).unwrap().contains("outside"));
        // Type 1's kind, then a cut in type 2's members.
        assert!(parse(&|b| b[24 + 7] = 20).unwrap().contains("kind 20"));
        assert!(
            parse(&|b| b[24 + 16 + 4] = 0xff)
                .unwrap()
                .contains("type 2 is cut")
        );
    }

    #[test]
    fn member_loops_end() {
        // struct s { struct s; } and a typedef of itself.
        #[rustfmt::skip]
        let types = [
            1, info(KIND_STRUCT, 2), 4,
            0, 1, 0,
            0, 2, 0,
            0, info(KIND_TYPEDEF, 0), 2,
        ];
        let bytes = blob(&types, b"\0s\0");
        let btf = Btf::parse(&bytes).unwrap();
        let s = btf.find_struct("s").unwrap();
        assert_eq!(btf.member_offset(&s, "x"), None);
    }

    #[test]
    fn aya_finds_the_kernel_ids() {
        let Ok(bytes) = BtfBytes::read(VMLINUX) else {
            eprintln!("no {VMLINUX}: skipped");
            return;
        };
        let btf = Btf::parse(&bytes).unwrap();
        let wanted = [
            ("btf_trace_sched_process_exit", Kind::Typedef),
            ("btf_trace_sched_process_free", Kind::Typedef),
            ("btf_trace_sched_process_exec", Kind::Typedef),
            ("kernel_wait4", Kind::Func),
            ("kernel_waitid", Kind::Func),
            ("no such function", Kind::Func),
        ];
        let synthetic = btf.aya_btf(&wanted).unwrap();
        let full = aya::Btf::from_sys_fs().unwrap();
        for (name, kind) in wanted {
            let aya_kind = match kind {
                Kind::Typedef => aya_obj::btf::BtfKind::Typedef,
                Kind::Func => aya_obj::btf::BtfKind::Func,
            };
            assert_eq!(
                synthetic.id_by_type_name_kind(name, aya_kind).ok(),
                full.id_by_type_name_kind(name, aya_kind).ok(),
                "{name}"
            );
        }
    }
}
