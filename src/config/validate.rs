//! Collects semantic config errors with their key paths (`proxy.nodes[1].base_url`), so one
//! run of `keel validate` lists every problem instead of stopping at the first.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One problem in the config, at a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Accumulates errors; `at("section")` gives a view that prefixes every path.
#[derive(Default)]
pub struct Validator {
    prefix: String,
    errors: Vec<ConfigError>,
}

/// A path-prefixed view into a [`Validator`].
pub struct Scope<'a> {
    prefix: String,
    errors: &'a mut Vec<ConfigError>,
}

impl Validator {
    pub fn at(&mut self, key: &str) -> Scope<'_> {
        Scope {
            prefix: join(&self.prefix, key),
            errors: &mut self.errors,
        }
    }

    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        self.at("").error(key, message)
    }

    pub fn positive_duration(&mut self, key: &str, d: Duration) {
        self.at("").positive_duration(key, d)
    }

    pub fn writable_dir(&mut self, key: &str, dir: &Path) {
        self.at("").writable_dir(key, dir)
    }

    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }
}

impl Scope<'_> {
    /// A nested scope: `at("nodes[1]")` under `proxy` reports as `proxy.nodes[1].key`.
    pub fn at(&mut self, key: &str) -> Scope<'_> {
        Scope {
            prefix: join(&self.prefix, key),
            errors: self.errors,
        }
    }

    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: join(&self.prefix, key),
            message: message.into(),
        });
    }

    /// Zero durations make no sense for any timeout or interval keel has.
    pub fn positive_duration(&mut self, key: &str, d: Duration) {
        if d.is_zero() {
            self.error(key, "duration must be greater than zero");
        }
    }

    pub fn range<T: PartialOrd + fmt::Display>(&mut self, key: &str, value: T, min: T, max: T) {
        if value < min || value > max {
            self.error(key, format!("{value} is out of range ({min}..={max})"));
        }
    }

    /// The directory exists and takes a new file, or its nearest existing ancestor does.
    pub fn writable_dir(&mut self, key: &str, dir: &Path) {
        if let Err(problem) = check_writable_dir(dir) {
            self.error(key, problem.to_string());
        }
    }
}

fn join(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty()) {
        (_, true) => prefix.to_string(),
        (true, false) => key.to_string(),
        (false, false) if key.starts_with('[') => format!("{prefix}{key}"),
        (false, false) => format!("{prefix}.{key}"),
    }
}

/// Why a directory cannot hold keel's files.
#[derive(Debug, thiserror::Error)]
enum DirProblem {
    #[error("{} is not writable: {} is not a directory", .dir.display(), .ancestor.display())]
    NotADirectory { dir: PathBuf, ancestor: PathBuf },
    #[error("{} is not writable: {source}", .dir.display())]
    NotWritable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn check_writable_dir(dir: &Path) -> Result<(), DirProblem> {
    let mut probe_dir = dir;
    while !probe_dir.exists() {
        match probe_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe_dir = p,
            _ => {
                probe_dir = Path::new(".");
                break;
            }
        }
    }
    if !probe_dir.is_dir() {
        return Err(DirProblem::NotADirectory {
            dir: dir.to_path_buf(),
            ancestor: probe_dir.to_path_buf(),
        });
    }
    let probe = probe_dir.join(format!(".keel-write-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(source) => Err(DirProblem::NotWritable {
            dir: dir.to_path_buf(),
            source,
        }),
    }
}
