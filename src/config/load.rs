//! Loading: TOML file, then `KEEL_<SECTION>__<KEY>` environment variables (figment), then a
//! typed, path-aware deserialization that reports every structural error.
//!
//! serde stops at the first error, so loading repeats: each failure is recorded with its key
//! path, the offending key is removed from the merged document (so its default applies), and
//! deserialization runs again. The result is a complete list of unknown keys and wrong types
//! in one pass, plus a usable config for the semantic checks that follow.

use super::{Config, ConfigError};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where `keel` looks for its config when `--config` is not given, in order (after the
/// systemd credential, see [`CREDENTIAL_NAME`]).
pub(super) const DEFAULT_PATHS: [&str; 2] = ["./config.toml", "/etc/keel/keel.toml"];

/// The config's name as a systemd credential (`LoadCredential=keel.toml:/etc/keel/keel.toml`).
/// systemd, as root, copies the file into `$CREDENTIALS_DIRECTORY`, readable only by the
/// service's user; so a root-owned 0600 config works under `DynamicUser=yes`.
pub const CREDENTIAL_NAME: &str = "keel.toml";

/// Loading failed: every problem found, each with its key path.
#[derive(Debug, thiserror::Error)]
#[error("{} configuration error(s)", .0.len())]
pub struct LoadError(pub Vec<ConfigError>);

/// The config file to use: the explicit one, else `$CREDENTIALS_DIRECTORY/keel.toml`, else
/// the first default that exists.
pub fn resolve_path(explicit: Option<&Path>) -> Result<PathBuf, LoadError> {
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    resolve_path_with(explicit, credentials.as_deref())
}

fn resolve_path_with(
    explicit: Option<&Path>,
    credentials: Option<&Path>,
) -> Result<PathBuf, LoadError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    // A file that may exist but cannot be checked (a directory we may not search) is taken
    // too: loading it then says "permission denied" instead of "no config file found".
    let present = |p: &PathBuf| !matches!(p.try_exists(), Ok(false));
    credentials
        .map(|dir| dir.join(CREDENTIAL_NAME))
        .into_iter()
        .chain(DEFAULT_PATHS.iter().map(PathBuf::from))
        .find(present)
        .ok_or_else(|| {
            let mut looked: Vec<String> = DEFAULT_PATHS.iter().map(|s| s.to_string()).collect();
            if let Some(dir) = credentials {
                looked.insert(0, dir.join(CREDENTIAL_NAME).display().to_string());
            }
            single(format!(
                "no config file found (looked for {}); pass --config PATH",
                looked.join(", ")
            ))
        })
}

/// Loads and fully validates the config at `path` with environment overrides.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| single(read_error(path, &e)))?;
    let figment = Figment::new()
        .merge(Toml::string(&text))
        .merge(Env::prefixed("KEEL_").split("__"));
    let merged: figment::value::Value = figment
        .extract()
        .map_err(|e| single(format!("{}: {e}", path.display())))?;
    let doc = serde_json::to_value(&merged).map_err(|e| single(e.to_string()))?;
    let (mut config, mut errors) = deserialize_collecting(doc);
    if let Some(config) = &mut config {
        // The reference service's variable names (EXECUTION_TIMEOUT_MS, ...) still work.
        errors.extend(config.executor.apply_env_aliases(|k| std::env::var(k).ok()));
        errors.extend(config.validate());
    }
    match config {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(LoadError(errors)),
    }
}

/// Why the file cannot be read, and for a permission problem what to do about it: the usual
/// cause is a root-owned config read by the service's unprivileged user.
fn read_error(path: &Path, e: &std::io::Error) -> String {
    let p = path.display();
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("config file {p} does not exist"),
        std::io::ErrorKind::PermissionDenied => {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: getuid(2) cannot fail and touches no memory.
            let uid = unsafe { libc::getuid() };
            let owner = std::fs::metadata(path)
                .map(|m| format!(" (owner uid {}, mode {:o})", m.uid(), m.mode() & 0o7777))
                .unwrap_or_default();
            format!(
                "cannot read config file {p}: permission denied for uid {uid}{owner}. Make it \
                 readable by keel's user, or under systemd pass it as a credential \
                 (LoadCredential={CREDENTIAL_NAME}:{p} and no --config; README, Operations)"
            )
        }
        _ => format!("cannot read config file {p}: {e}"),
    }
}

fn single(message: String) -> LoadError {
    LoadError(vec![ConfigError {
        path: String::new(),
        message,
    }])
}

/// Deserializes `doc`, removing each offending key and retrying, until it succeeds.
fn deserialize_collecting(mut doc: Value) -> (Option<Config>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    // Each round removes one key, so the document's size bounds the rounds; the cap is
    // a guard against a removal that does not take effect.
    for _ in 0..256 {
        match serde_path_to_error::deserialize::<_, Config>(&doc) {
            Ok(config) => return (Some(config), errors),
            Err(err) => {
                let mut path: Vec<Segment> = err.path().iter().map(Segment::from).collect();
                let message = err.inner().to_string();
                let (message, unknown) = describe(&message);
                if let Some(key) = &unknown {
                    if path.last() != Some(&Segment::Key(key.clone())) {
                        path.push(Segment::Key(key.clone()));
                    }
                }
                errors.push(ConfigError {
                    path: render(&path),
                    message,
                });
                if !remove(&mut doc, &path) {
                    return (None, errors);
                }
            }
        }
    }
    (None, errors)
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl From<&serde_path_to_error::Segment> for Segment {
    fn from(s: &serde_path_to_error::Segment) -> Self {
        match s {
            serde_path_to_error::Segment::Seq { index } => Segment::Index(*index),
            serde_path_to_error::Segment::Map { key } => Segment::Key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => Segment::Key(variant.clone()),
            serde_path_to_error::Segment::Unknown => Segment::Key("?".into()),
        }
    }
}

fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Segment::Key(k) if out.is_empty() => out.push_str(k),
            Segment::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Turns serde's message into ours; for an unknown field, returns the key and a message
/// with a "did you mean" suggestion taken from serde's list of expected fields.
fn describe(serde_message: &str) -> (String, Option<String>) {
    if let Some(rest) = serde_message.strip_prefix("unknown field `") {
        // "unknown field `lsten`, expected one of `listen`, `admin_token`"
        let names: Vec<&str> = rest.split('`').step_by(2).collect();
        let Some((unknown, expected)) = names.split_first() else {
            return (serde_message.to_string(), None);
        };
        let suggestion = expected
            .iter()
            .map(|cand| (strsim::jaro_winkler(unknown, cand), *cand))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, cand)| format!(" (did you mean {cand:?}?)"))
            .unwrap_or_default();
        return (
            format!("unknown key {unknown:?}{suggestion}"),
            Some((*unknown).to_string()),
        );
    }
    (serde_message.to_string(), None)
}

/// Removes the value at `path`; `false` when nothing was there to remove.
fn remove(doc: &mut Value, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = doc;
    for seg in parents {
        node = match (seg, node) {
            (Segment::Key(k), Value::Object(map)) => match map.get_mut(k) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Index(i), Value::Array(items)) => match items.get_mut(*i) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Segment::Key(k), Value::Object(map)) => map.remove(k).is_some(),
        (Segment::Index(i), Value::Array(items)) if *i < items.len() => {
            items.remove(*i);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_of(doc: Value) -> Vec<String> {
        let (_, errs) = deserialize_collecting(doc);
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn every_structural_error_is_listed_with_its_path() {
        let errs = errors_of(json!({
            "control": {"lsten": "127.0.0.1:1", "listen": "127.0.0.1:99999", "max_body_bytes": "big"},
            "log": {"format": "xml"},
            "shutdown_grace": "soon",
            "bogus": 1
        }));
        assert_eq!(errs.len(), 6, "{errs:#?}");
        assert!(
            errs.contains(
                &"control.lsten: unknown key \"lsten\" (did you mean \"listen\"?)".to_string()
            ),
            "{errs:#?}"
        );
        assert!(
            errs.contains(
                &"control.listen: invalid socket address \"127.0.0.1:99999\"".to_string()
            ),
            "{errs:#?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("control.max_body_bytes: invalid type")),
            "{errs:#?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.starts_with("log.format: unknown variant")),
            "{errs:#?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("shutdown_grace: ")),
            "{errs:#?}"
        );
        assert!(
            errs.iter().any(|e| e.starts_with("bogus: unknown key")),
            "{errs:#?}"
        );
    }

    #[test]
    fn valid_document_has_no_errors() {
        let (config, errs) =
            deserialize_collecting(json!({"control": {"listen": "127.0.0.1:9000"}}));
        assert!(errs.is_empty());
        assert_eq!(config.unwrap().control.listen.to_string(), "127.0.0.1:9000");
    }

    #[test]
    fn the_credential_comes_before_the_default_paths() {
        let dir = tempfile::tempdir().unwrap();
        let cred = dir.path().join(CREDENTIAL_NAME);
        std::fs::write(&cred, "").unwrap();
        assert_eq!(resolve_path_with(None, Some(dir.path())).unwrap(), cred);
        let explicit = Path::new("/elsewhere.toml");
        assert_eq!(
            resolve_path_with(Some(explicit), Some(dir.path())).unwrap(),
            explicit
        );
        // A credentials directory without keel.toml (only other credentials) is skipped.
        std::fs::remove_file(&cred).unwrap();
        match resolve_path_with(None, Some(dir.path())) {
            Ok(p) => assert!(DEFAULT_PATHS.iter().any(|d| p == Path::new(d))),
            Err(LoadError(e)) => assert!(e[0].message.contains("keel.toml"), "{e:?}"),
        }
    }

    #[test]
    fn suggestion_only_for_close_names() {
        let (msg, key) = describe("unknown field `zzzz`, expected one of `listen`, `admin_token`");
        assert_eq!(key.as_deref(), Some("zzzz"));
        assert_eq!(msg, "unknown key \"zzzz\"");
    }
}
