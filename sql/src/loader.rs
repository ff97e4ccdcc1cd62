//! Finding tables on disk, and noticing new ones: `--data DIR` serves every
//! segment file (`*.omen`) in DIR as a table named after the file;
//! `--table name=path` names one explicitly. [`Loader::refresh`], called
//! on a timer by the server, opens segments that appeared, reopens ones
//! that changed and drops ones that vanished, without a restart.
//! omen-build publishes segments by atomic rename, so a file is either
//! absent or complete.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use omen_engine::index::SegmentOptions;

use omen_engine::collection::CollectionOptions;

use crate::catalog::{Catalog, CollectionTable, SegmentTable, is_collection_dir};

/// What to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory whose `*.omen` files are tables, or one segment file.
    Path(PathBuf),
    /// `--table name=path`.
    Named { name: String, path: PathBuf },
}

impl Source {
    /// Parses `name=path` (a `--table` argument).
    pub fn parse_named(arg: &str) -> Result<Source, String> {
        let (name, path) = arg
            .split_once('=')
            .filter(|(n, p)| valid_table_name(n) && !p.is_empty())
            .ok_or_else(|| {
                format!("--table '{arg}': expected name=path, name made of letters, digits and _")
            })?;
        Ok(Source::Named {
            name: name.to_ascii_lowercase(),
            path: path.into(),
        })
    }
}

/// Whether `n` can name a table without quoting.
pub fn valid_table_name(n: &str) -> bool {
    !n.is_empty()
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !n.starts_with(|c: char| c.is_ascii_digit())
}

/// The table name for a segment file: its stem, lower case, with other
/// characters than letters, digits and `_` replaced by `_`.
pub fn table_name(path: &Path) -> String {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("segment");
    let mut name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// A file's identity for change detection.
type Stamp = (SystemTime, u64);

/// Keeps a catalog in step with the files it serves.
#[derive(Debug)]
pub struct Loader {
    sources: Vec<Source>,
    options: SegmentOptions,
    /// Table name → (path, stamp) of what is loaded.
    loaded: HashMap<String, (PathBuf, Stamp)>,
    /// Files that failed to open, with the stamp they failed at, so a bad
    /// file is reported once, not every poll.
    failed: HashMap<PathBuf, Stamp>,
    /// Whether the first refresh (which opens collections) has run.
    started: bool,
}

/// One change a refresh made, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added { table: String, path: PathBuf },
    Reloaded { table: String, path: PathBuf },
    Removed { table: String },
    Failed { path: PathBuf, error: String },
}

impl Loader {
    pub fn new(sources: Vec<Source>, options: SegmentOptions) -> Self {
        Loader {
            sources,
            options,
            loaded: HashMap::new(),
            failed: HashMap::new(),
            started: false,
        }
    }

    /// The (table, path) pairs the sources name now.
    fn wanted(&mut self, catalog: &Catalog, changes: &mut Vec<Change>) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        for s in self.sources.clone() {
            match &s {
                Source::Named { name, path } => out.push((name.clone(), path.clone())),
                Source::Path(p) if p.is_dir() => {
                    let Ok(entries) = std::fs::read_dir(p) else {
                        continue;
                    };
                    let mut files: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|e| e == "omen") && p.is_file())
                        .collect();
                    files.sort();
                    out.extend(files.into_iter().map(|f| (table_name(&f), f)));
                    // Collections are opened at startup only: a running
                    // server makes its own with CREATE TABLE, and one made
                    // by another process is locked by it.
                    if !self.started {
                        self.open_collections(&p.clone(), catalog, changes);
                    }
                }
                Source::Path(p) => out.push((table_name(p), p.clone())),
            }
        }
        out
    }

    /// Brings `catalog` in line with the files; returns what changed.
    pub fn refresh(&mut self, catalog: &Catalog) -> Vec<Change> {
        let mut changes = Vec::new();
        let wanted = self.wanted(catalog, &mut changes);
        let mut seen = std::collections::HashSet::new();
        for (name, path) in wanted {
            if !seen.insert(name.clone()) {
                continue; // the first source naming a table wins
            }
            let Some(stamp) = stamp(&path) else {
                continue;
            };
            if self
                .loaded
                .get(&name)
                .is_some_and(|(p, s)| *p == path && *s == stamp)
            {
                continue;
            }
            if self.failed.get(&path) == Some(&stamp) {
                continue;
            }
            match SegmentTable::open(&name, &path, &self.options) {
                Ok(table) => {
                    catalog.put(Arc::new(table));
                    self.failed.remove(&path);
                    let change = if self.loaded.contains_key(&name) {
                        Change::Reloaded {
                            table: name.clone(),
                            path: path.clone(),
                        }
                    } else {
                        Change::Added {
                            table: name.clone(),
                            path: path.clone(),
                        }
                    };
                    self.loaded.insert(name, (path, stamp));
                    changes.push(change);
                }
                Err(e) => {
                    self.failed.insert(path.clone(), stamp);
                    changes.push(Change::Failed {
                        path,
                        error: crate::exec::render(&e),
                    });
                }
            }
        }
        self.started = true;
        let gone: Vec<String> = self
            .loaded
            .keys()
            .filter(|n| !seen.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some((path, _)) = self.loaded.get(&name)
                && stamp(path).is_none()
            {
                catalog.remove(&name);
                self.loaded.remove(&name);
                changes.push(Change::Removed { table: name });
            }
        }
        changes
    }
}

impl Loader {
    /// Opens collection directories in `dir` not served yet. A collection
    /// updates itself, so it is opened once and never reloaded here.
    fn open_collections(&mut self, dir: &Path, catalog: &Catalog, changes: &mut Vec<Change>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if !path.is_dir() || !is_collection_dir(&path) {
                continue;
            }
            let name = table_name(&path);
            if catalog.contains(&name) || self.failed.contains_key(&path) {
                continue;
            }
            match CollectionTable::open(&path, CollectionOptions::default()) {
                Ok(t) => {
                    catalog.put(Arc::new(t));
                    changes.push(Change::Added { table: name, path });
                }
                Err(e) => {
                    // Reported once; a restart retries.
                    self.failed
                        .insert(path.clone(), (SystemTime::UNIX_EPOCH, 0));
                    changes.push(Change::Failed {
                        path,
                        error: crate::exec::render(&e),
                    });
                }
            }
        }
    }
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}
