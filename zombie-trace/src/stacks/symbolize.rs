//! Names for code addresses in a live process, by blazesym: the ELF symbol
//! tables, DWARF for file and line (in the file, or in a separate debug
//! file found by build id or `.gnu_debuglink` under `/usr/lib/debug`).
//!
//! Each mapped file is read by its path under the process's root
//! (`/proc/PID/root`, so a container's files are its own), with file
//! offsets from the mapping: blazesym's whole-process source opens
//! `/proc/PID/map_files`, which needs CAP_SYS_ADMIN, and the tracer has
//! dropped it by then.

use std::{collections::HashMap, path::Path};

use blazesym::symbolize::{
    Input, Symbolized, Symbolizer,
    source::{Elf, Source},
};

use super::maps::Mapping;

/// Past this many lookups the symbolizer, which keeps every file it
/// parsed, starts again: a long session meets many programs.
const RENEW_AFTER: u32 = 4096;

/// What is known of one address.
#[derive(Debug, Default)]
pub struct Name {
    pub symbol: Option<String>,
    /// From the symbol's start.
    pub offset: Option<u64>,
    pub file: Option<String>,
    pub line: Option<u32>,
}

pub struct Names {
    symbolizer: Symbolizer,
    lookups: u32,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            symbolizer: Symbolizer::new(),
            lookups: 0,
        }
    }
}

impl Names {
    /// Names for `addresses` of `pid`, whose file mappings are `maps`: one
    /// each, in order; unknown where a file cannot be read.
    pub fn lookup(&mut self, pid: u32, maps: &[Mapping], addresses: &[u64]) -> Vec<Name> {
        self.lookups = self.lookups.saturating_add(1);
        if self.lookups > RENEW_AFTER {
            *self = Names::default();
        }
        let mut names: Vec<Name> = addresses.iter().map(|_| Name::default()).collect();
        // Each address's place in its file, by file.
        let mut by_file: HashMap<&Path, Vec<(usize, u64)>> = HashMap::new();
        for (i, &address) in addresses.iter().enumerate() {
            if let Some(m) = maps.iter().find(|m| (m.start..m.end).contains(&address)) {
                let offset = address - m.start + m.offset;
                by_file.entry(&m.path).or_default().push((i, offset));
            }
        }
        for (path, at) in by_file {
            let relative = path.strip_prefix("/").unwrap_or(path);
            let file = Path::new(&format!("/proc/{pid}/root")).join(relative);
            let offsets: Vec<u64> = at.iter().map(|&(_, offset)| offset).collect();
            let source = Source::Elf(Elf::new(file));
            match self
                .symbolizer
                .symbolize(&source, Input::FileOffset(&offsets))
            {
                Ok(found) => {
                    for (&(i, _), symbolized) in at.iter().zip(found) {
                        names[i] = name(symbolized);
                    }
                }
                Err(e) => log::debug!("spawn stack of {pid}: {}: {e}", path.display()),
            }
        }
        names
    }
}

fn name(symbolized: Symbolized<'_>) -> Name {
    match symbolized {
        Symbolized::Sym(sym) => {
            let code = sym.code_info.as_deref();
            Name {
                symbol: Some(sym.name.into_owned()),
                offset: Some(sym.offset as u64),
                file: code.map(|c| c.to_path().display().to_string()),
                line: code.and_then(|c| c.line),
            }
        }
        Symbolized::Unknown(_) => Name::default(),
    }
}
