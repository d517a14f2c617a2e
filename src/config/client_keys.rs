//! `[proxy] client_keys`: the keys clients present, either a plain list of strings (each
//! named `key-<n>` by its position from 1) or `[[proxy.client_keys]]` tables with a name,
//! the key (inline, in a file, or as its SHA-256) and optional limits. Both forms may be
//! mixed; serde tells them apart per entry (untagged).

use super::validate::Scope;
use super::Secret;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::PathBuf;

/// One accepted client key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClientKeyConfig {
    /// `client_keys = ["sk-..."]`: a key without a name of its own or limits.
    Plain(Secret),
    Named(NamedClientKey),
}

/// A `[[proxy.client_keys]]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedClientKey {
    /// Shown in logs and metrics (`key` label) instead of the key.
    pub name: String,
    /// The key itself; exactly one of `key`, `key_file`, `key_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    /// A file holding the key (surrounding whitespace ignored), read at startup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The key's SHA-256, 64 hex digits: the config then never holds the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Input + output tokens a minute; a request is admitted while the key has any left
    /// and its usage is charged when the answer ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u32>,
    /// Models this key may ask for (the body's `model`); empty = any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
}

impl ClientKeyConfig {
    /// The name logs and metrics use: its own, or `key-<n>` for entry `index`.
    pub fn name(&self, index: usize) -> String {
        match self {
            ClientKeyConfig::Plain(_) => format!("key-{}", index + 1),
            ClientKeyConfig::Named(k) => k.name.clone(),
        }
    }
}

/// Parses a `key_hash`: 64 hex digits.
pub fn parse_key_hash(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

pub(super) fn validate(v: &mut Scope<'_>, keys: &[ClientKeyConfig]) {
    let mut names = HashSet::new();
    for (i, entry) in keys.iter().enumerate() {
        let path = format!("client_keys[{i}]");
        let name = entry.name(i);
        if !names.insert(name.clone()) {
            v.error(&path, format!("duplicate client key name {name:?}"));
        }
        match entry {
            ClientKeyConfig::Plain(key) => {
                if key.expose().trim().is_empty() {
                    v.error(&path, "must not be empty");
                }
            }
            ClientKeyConfig::Named(k) => k.validate(&mut v.at(&path)),
        }
    }
}

impl NamedClientKey {
    fn validate(&self, v: &mut Scope<'_>) {
        let valid_name = (1..=64).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid_name {
            v.error("name", "must be 1-64 of A-Z a-z 0-9 - _ .");
        }
        let given = [
            self.key.is_some(),
            self.key_file.is_some(),
            self.key_hash.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            v.error("key", "exactly one of key, key_file, key_hash must be set");
        }
        if self
            .key
            .as_ref()
            .is_some_and(|k| k.expose().trim().is_empty())
        {
            v.error("key", "must not be empty");
        }
        if let Some(path) = &self.key_file {
            match std::fs::read_to_string(path) {
                Ok(text) if text.trim().is_empty() => {
                    v.error("key_file", format!("{} is empty", path.display()))
                }
                Ok(_) => {}
                Err(e) => v.error("key_file", format!("cannot read {}: {e}", path.display())),
            }
        }
        if self
            .key_hash
            .as_ref()
            .is_some_and(|h| parse_key_hash(h).is_none())
        {
            v.error("key_hash", "must be a SHA-256 as 64 hex digits");
        }
        if self.requests_per_minute == Some(0) {
            v.error(
                "requests_per_minute",
                "must be at least 1 (omit it for no limit)",
            );
        }
        if self.tokens_per_minute == Some(0) {
            v.error(
                "tokens_per_minute",
                "must be at least 1 (omit it for no limit)",
            );
        }
        if self.max_concurrent == Some(0) {
            v.error(
                "max_concurrent",
                "must be at least 1 (omit it for no limit)",
            );
        }
        if self.models.iter().any(|m| m.trim().is_empty()) {
            v.error("models", "model names must not be empty");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_strings_and_named_tables_mix_in_one_list() {
        #[derive(Deserialize)]
        struct P {
            client_keys: Vec<ClientKeyConfig>,
        }
        let p: P = toml::from_str(
            r#"
client_keys = ["plain", { name = "team-a", key = "k", requests_per_minute = 5, models = ["m"] }]
"#,
        )
        .unwrap();
        assert!(matches!(&p.client_keys[0], ClientKeyConfig::Plain(k) if k.expose() == "plain"));
        assert_eq!(p.client_keys[0].name(0), "key-1");
        let ClientKeyConfig::Named(k) = &p.client_keys[1] else {
            panic!("not named");
        };
        assert_eq!(
            (k.name.as_str(), k.requests_per_minute),
            ("team-a", Some(5))
        );
        assert_eq!(p.client_keys[1].name(1), "team-a");
    }

    #[test]
    fn key_hashes_are_64_hex_digits() {
        let h = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(parse_key_hash(h).unwrap()[0], 0x9f);
        assert!(parse_key_hash(&h[1..]).is_none());
        assert!(parse_key_hash(&h.replace('9', "g")).is_none());
    }
}
