//! zombie-trace: find zombie processes as they happen.
//!
//! Layers, each using only those below it (see README.md, Development):
//! `model` (plain types); `kernel` (the eBPF programs, their maps and
//! records) and `proc` (every `/proc` read and its parsers); `containers`
//! (container runtimes' files, container cgroups) and `stacks` (spawn
//! stacks unwound and named); `engine`
//! (pairing exits with reaps), `diagnosis`, `stats` and `filter` (pure
//! logic); `output` (text, JSON) and `metrics`; `session` (the event loop
//! that wires them) and `ps`; `cli` and `main.rs`.

pub mod cli;
pub mod containers;
pub mod diagnosis;
pub mod engine;
pub mod filter;
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod output;
pub mod proc;
pub mod ps;
pub mod session;
pub mod stacks;
pub mod stats;

/// The layer rule (README.md, Development): a module uses only modules of
/// lower layers, so that each can be read, and tested, without those above.
#[cfg(test)]
mod layers {
    use std::{fs, path::Path};

    /// Each top-level module's layer; a module may use those of lower
    /// layers only.
    const LAYERS: &[(&str, u8)] = &[
        ("model", 0),
        ("kernel", 1),
        ("proc", 1),
        ("containers", 2),
        ("stacks", 2),
        ("engine", 3),
        ("diagnosis", 3),
        ("stats", 3),
        ("filter", 3),
        ("output", 4),
        ("metrics", 4),
        ("session", 5),
        ("ps", 5),
        ("cli", 6),
    ];

    fn layer(module: &str) -> Option<u8> {
        LAYERS.iter().find(|(m, _)| *m == module).map(|&(_, l)| l)
    }

    /// The top-level modules named as `crate::NAME` in `code`, comments and
    /// tests left out.
    fn uses(code: &str) -> Vec<&str> {
        let code = code.split("#[cfg(test)]").next().unwrap_or(code);
        let mut used = Vec::new();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let name: &str = rest
                    .split(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .next()
                    .unwrap_or_default();
                used.push(name);
            }
        }
        // `use crate::{a::..., b, ...};` names modules after the brace.
        for block in code.split("use crate::{").skip(1) {
            let block = block.split("};").next().unwrap_or_default();
            let mut depth = 0;
            let mut word = String::new();
            for c in block.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    c if c.is_ascii_lowercase() || c == '_' => word.push(c),
                    _ => {
                        if depth == 0 && layer(&word).is_some() {
                            used.push(LAYERS.iter().find(|(m, _)| *m == word).unwrap().0);
                        }
                        word.clear();
                    }
                }
            }
        }
        used
    }

    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn no_module_uses_one_above_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        files(&src, &mut paths);
        let mut wrong = Vec::new();
        for path in paths {
            let rel = path.strip_prefix(&src).unwrap();
            let top = rel.iter().next().unwrap().to_str().unwrap();
            let module = top.strip_suffix(".rs").unwrap_or(top);
            let Some(own) = layer(module) else {
                continue;
            };
            for used in uses(&fs::read_to_string(&path).unwrap()) {
                if used != module && layer(used).is_some_and(|l| l >= own) {
                    wrong.push(format!("{} uses {used}", rel.display()));
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
