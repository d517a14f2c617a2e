//! The defaults written in prose — README.md's configuration tables, `docs/gateway.md`'s
//! reference and the commented defaults in `config.toml` — checked against
//! `Config::default()`, so none of the three copies can drift from the code.
//!
//! What is read: in a section (a heading naming `[section]`, or a `[section]` at the start
//! of a line), every table row whose header is `| key | default | …`, with its backticked
//! default (rows whose default is prose — `required`, `none`, a formula — are skipped), and
//! every `` `key = value` `` written in text or in a table cell; in `config.toml`, every
//! commented `# key = value` (several may share a line, after a `[section]`). A value
//! compares equal to the default when it is the same TOML value, or the same duration.

use super::Config;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// One documented default: where it was read, the key path, the literal.
#[derive(Debug)]
struct Documented {
    at: String,
    path: String,
    literal: String,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The section a heading or a line opens: `[proxy.retry]` → `proxy.retry`; `[[x]]` arrays
/// have no single default and read as `None`; "Top level" is the root.
fn section_of(text: &str) -> Option<Option<String>> {
    if text.contains("Top level") {
        return Some(Some(String::new()));
    }
    let start = text.find("`[")?;
    let rest = &text[start + 1..];
    if rest.starts_with("[[") {
        return Some(None);
    }
    let end = rest.find(']')?;
    Some(Some(rest[1..end].to_string()))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The backticked pieces of a cell, when the cell is only backticked pieces joined by
/// ` / ` (an optional trailing `(note)` aside).
fn backticked(cell: &str) -> Option<Vec<String>> {
    let mut cell = cell.trim();
    if let Some(open) = cell.rfind(" (") {
        if cell.ends_with(')') && cell[..open].ends_with('`') {
            cell = &cell[..open];
        }
    }
    let mut out = Vec::new();
    for piece in cell.split(" / ") {
        let piece = piece.trim();
        let inner = piece.strip_prefix('`')?.strip_suffix('`')?;
        if inner.contains('`') {
            return None;
        }
        out.push(inner.to_string());
    }
    Some(out)
}

/// Full key paths of a key cell: `a.b_qps` / `_burst` → `a.b_burst`; `a.x` / `y` → `a.y`.
fn key_paths(prefix: &str, keys: &[String]) -> Vec<String> {
    let first = keys.first().cloned().unwrap_or_default();
    let (parent, last) = match first.rsplit_once('.') {
        Some((p, l)) => (p.to_string(), l.to_string()),
        None => (String::new(), first.clone()),
    };
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let local = if i == 0 {
                first.clone()
            } else if let Some(suffix) = k.strip_prefix('_') {
                let stem = last.rsplit_once('_').map_or(last.as_str(), |(s, _)| s);
                join(&parent, &format!("{stem}_{suffix}"))
            } else if k.contains('.') {
                k.clone()
            } else {
                join(&parent, k)
            };
            join(prefix, &local)
        })
        .collect()
}

/// Every `key = value` in `text`, values up to the next `, key = ` (or the end).
fn assignments(text: &str) -> Vec<(String, String)> {
    let is_key = |s: &str| {
        let mut chars = s.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut starts = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find(" = ") {
        let eq = from + i;
        let key_start = text[..eq].rfind([' ', ',', '`']).map_or(0, |j| j + 1);
        if is_key(&text[key_start..eq]) && (key_start == 0 || text[..key_start].ends_with(", ")) {
            starts.push((key_start, eq));
        }
        from = eq + 3;
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &(key_start, eq))| {
            let end = starts.get(n + 1).map_or(text.len(), |&(next, _)| next - 2);
            let value = text[eq + 3..end].trim().trim_end_matches(',').trim();
            (text[key_start..eq].to_string(), value.to_string())
        })
        .collect()
}

/// Defaults documented in a markdown file.
fn from_markdown(file: &str) -> Vec<Documented> {
    let text = std::fs::read_to_string(root().join(file)).unwrap_or_default();
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut key_table = false;
    let mut in_config = file != "README.md";
    for (n, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", n + 1);
        if line.starts_with("## ") {
            in_config = file != "README.md" || line.starts_with("## Configuration");
            section = None;
            continue;
        }
        if !in_config {
            continue;
        }
        if line.starts_with('#') {
            section = section_of(line).flatten();
            key_table = false;
            continue;
        }
        if line.starts_with("`[") {
            if let Some(s) = section_of(line) {
                section = s;
            }
        }
        let Some(prefix) = section.as_deref() else {
            continue;
        };
        if line.starts_with("|-") {
            continue;
        }
        if line.starts_with('|') {
            let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
            let first = cells.first().map_or("", |c| c.trim());
            if !first.starts_with('`') {
                // A header row: `| key | default | meaning |` starts a table of defaults.
                key_table = first == "key" && cells.get(1).is_some_and(|c| c.trim() == "default");
                continue;
            }
            if key_table && cells.len() >= 2 {
                if let (Some(keys), Some(values)) = (backticked(cells[0]), backticked(cells[1])) {
                    if keys.len() == values.len() {
                        for (path, literal) in key_paths(prefix, &keys).into_iter().zip(values) {
                            out.push(Documented {
                                at: at.clone(),
                                path,
                                literal,
                            });
                        }
                        continue;
                    }
                }
            }
        }
        // `key = value` fragments in text and in other tables' cells.
        for fragment in line.split('`').skip(1).step_by(2) {
            for (key, literal) in assignments(fragment) {
                out.push(Documented {
                    at: at.clone(),
                    path: join(prefix, &key),
                    literal,
                });
            }
        }
    }
    out
}

/// Defaults shown commented in `config.toml`.
fn from_config_toml() -> Vec<Documented> {
    let text = std::fs::read_to_string(root().join("config.toml")).unwrap_or_default();
    let mut out = Vec::new();
    let mut section: Option<String> = Some(String::new());
    for (n, line) in text.lines().enumerate() {
        let at = format!("config.toml:{}", n + 1);
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            section = section_of(&format!("`{trimmed}`")).flatten();
            continue;
        }
        let Some(comment) = trimmed.strip_prefix('#') else {
            continue;
        };
        let mut body = comment.trim();
        // Drop a trailing explanation: `# key = 1  # why`.
        if let Some(i) = body.find(" #") {
            body = body[..i].trim();
        }
        let mut prefix = section.clone();
        if body.starts_with("[[") {
            section = None;
            continue;
        }
        if body.starts_with('[') {
            let Some(end) = body.find(']') else { continue };
            prefix = Some(body[1..end].to_string());
            section = prefix.clone();
            body = body[end + 1..].trim();
        }
        let Some(prefix) = prefix else { continue };
        for (key, literal) in assignments(body) {
            out.push(Documented {
                at: at.clone(),
                path: join(&prefix, &key),
                literal,
            });
        }
    }
    out
}

/// The value at a dotted path.
/// The default at `path`; a key inside an optional section that is unset by default
/// (`[proxy.tls]`) reads as `null`: what is documented there is an example.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(v, |v, k| if v.is_null() { Some(v) } else { v.get(k) })
}

fn duration(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim_matches('"')).ok()
}

/// Whether a documented literal states `actual`. `Err` when the literal is not a value at
/// all (a formula, a placeholder): such rows document, they do not state a default.
fn states(literal: &str, actual: &Value) -> Result<bool, ()> {
    let parsed: Option<Value> = toml::from_str::<toml::Table>(&format!("v = {literal}"))
        .ok()
        .and_then(|t| t.get("v").cloned())
        .and_then(|v| serde_json::to_value(v).ok());
    if let Value::String(a) = actual {
        if let (Some(x), Some(y)) = (duration(literal), duration(a)) {
            return Ok(x == y);
        }
    }
    let Some(parsed) = parsed else {
        return Err(());
    };
    Ok(same(&parsed, actual))
}

/// Whether a config file setting `path = literal` loads.
fn accepted(path: &str, literal: &str) -> bool {
    let (table, key) = path.rsplit_once('.').unwrap_or(("", path));
    let doc = if table.is_empty() {
        format!("{key} = {literal}\n")
    } else {
        format!("[{table}]\n{key} = {literal}\n")
    };
    toml::from_str::<Config>(&doc).is_ok()
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn documented_defaults_are_the_code_defaults() {
    let defaults = serde_json::to_value(Config::default()).expect("the defaults serialize");
    let mut documented = from_markdown("README.md");
    let readme_rows = documented.len();
    documented.extend(from_markdown("docs/gateway.md"));
    documented.extend(from_config_toml());
    assert!(
        readme_rows > 80,
        "README tables not found ({readme_rows} rows)"
    );
    let mut wrong = Vec::new();
    let mut checked = 0;
    for d in &documented {
        if d.literal.contains("...") || d.literal.contains('…') {
            continue; // a placeholder (`["..."]`), not a value
        }
        match lookup(&defaults, &d.path) {
            // An optional key without a default: an example value documents, it is no default.
            Some(Value::Null) => {}
            Some(actual) => match states(&d.literal, actual) {
                Ok(true) => checked += 1,
                Ok(false) => wrong.push(format!(
                    "{}: {} documented as {}, Config::default() has {actual}",
                    d.at, d.path, d.literal
                )),
                Err(()) => {}
            },
            // Not in the serialized defaults: an optional key left out while unset (its
            // documented value is an example or a derived figure), or a renamed or removed
            // key — which config itself refuses.
            None => {
                if states(&d.literal, &Value::Null).is_ok() && !accepted(&d.path, &d.literal) {
                    wrong.push(format!(
                        "{}: {} = {} is documented, but config refuses it",
                        d.at, d.path, d.literal
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} drifted:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(
        checked > 100,
        "only {checked} documented defaults were checked"
    );
}
