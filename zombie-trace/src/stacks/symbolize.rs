//! Names for code addresses in a live process, by blazesym: the ELF symbol
//! tables, DWARF for file and line (in the file, or in a separate debug
//! file found by build id or `.gnu_debuglink` under `/usr/lib/debug`), and
//! the process's perf map (`/tmp/perf-PID.map`, written by JITs).

use blazesym::symbolize::{Input, Symbolized, Symbolizer, source::Process, source::Source};

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
    /// Names for `addresses` of `pid`, one each, in order; all unknown if
    /// the process cannot be read.
    pub fn lookup(&mut self, pid: u32, addresses: &[u64]) -> Vec<Name> {
        self.lookups = self.lookups.saturating_add(1);
        if self.lookups > RENEW_AFTER {
            *self = Names::default();
        }
        let source = Source::Process(Process::new(pid.into()));
        let found = match self
            .symbolizer
            .symbolize(&source, Input::AbsAddr(addresses))
        {
            Ok(found) => found,
            Err(e) => {
                log::debug!("spawn stack of {pid}: symbolizing failed: {e}");
                return addresses.iter().map(|_| Name::default()).collect();
            }
        };
        found
            .into_iter()
            .map(|symbolized| match symbolized {
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
            })
            .chain(std::iter::repeat_with(Name::default))
            .take(addresses.len())
            .collect()
    }
}
