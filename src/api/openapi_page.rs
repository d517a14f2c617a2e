//! `docs/api.md`: the API page, rendered from the OpenAPI document (never written by hand).
//! A unit test renders [`super::openapi::reference_document`] and compares it with the file;
//! on a difference it writes the new page and fails, so a change to a handler's
//! documentation shows up as a diff to commit beside it.

use serde_json::{Map, Value};
use std::fmt::Write;

const METHODS: [&str; 8] = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace",
];

/// The page for a document (its JSON form).
pub(super) fn render(doc: &Value) -> String {
    let mut out = String::new();
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let _ = writeln!(out, "# {title}\n");
    out.push_str(
        "<!-- Generated from the OpenAPI document (src/api/openapi.rs, the handlers' \
         #[utoipa::path] attributes and the types they answer). Do not edit: \
         `cargo test --lib api::openapi_page` rewrites this file. -->\n\n",
    );
    if let Some(d) = doc["info"]["description"].as_str() {
        let _ = writeln!(out, "{d}\n");
    }
    let _ = writeln!(
        out,
        "A running keel serves this document as OpenAPI {} at `GET /api/openapi.json` (no \
         token needed), listing the routes that keel mounted: the `/flow` routes only with \
         `[executor] enabled`, the web UI only with `[dashboard] enabled`. This page lists \
         them all.\n",
        doc["openapi"].as_str().unwrap_or("3.1")
    );
    authentication(&mut out, doc);
    let tags: Vec<(&str, &str)> = doc["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| {
                    Some((t["name"].as_str()?, t["description"].as_str().unwrap_or("")))
                })
                .collect()
        })
        .unwrap_or_default();
    let ops = operations(doc);
    out.push_str("## Routes\n\n| Method | Path | Auth | What |\n|---|---|---|---|\n");
    for (tag, _) in &tags {
        for op in ops.iter().filter(|o| o.tag == *tag) {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} |",
                op.method.to_uppercase(),
                op.path,
                cell(&auth_of(op.op)),
                cell(op.op["summary"].as_str().unwrap_or(""))
            );
        }
    }
    out.push('\n');
    for (tag, description) in &tags {
        let _ = writeln!(out, "## {tag} routes\n\n{description}\n");
        for op in ops.iter().filter(|o| o.tag == *tag) {
            operation(&mut out, doc, op);
        }
    }
    schemas(&mut out, doc);
    out
}

struct Op<'a> {
    method: &'a str,
    path: &'a str,
    tag: &'a str,
    op: &'a Value,
}

/// Every operation, by path then method.
fn operations(doc: &Value) -> Vec<Op<'_>> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                let tag = op["tags"][0].as_str().unwrap_or("");
                ops.push(Op {
                    method,
                    path,
                    tag,
                    op,
                });
            }
        }
    }
    ops
}

fn authentication(out: &mut String, doc: &Value) {
    out.push_str("## Authentication\n\n| Scheme | Sent as | What |\n|---|---|---|\n");
    let schemes = &doc["components"]["securitySchemes"];
    for (name, s) in schemes.as_object().into_iter().flatten() {
        let sent = match (s["type"].as_str(), s["in"].as_str()) {
            (Some("http"), _) => "`Authorization: Bearer <token>`".to_string(),
            (Some("apiKey"), Some("cookie")) => {
                format!("cookie `{}`", s["name"].as_str().unwrap_or(""))
            }
            (Some("apiKey"), _) => {
                format!("header `{}: <token>`", s["name"].as_str().unwrap_or(""))
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "| `{name}` | {sent} | {} |",
            cell(s["description"].as_str().unwrap_or(""))
        );
    }
    out.push_str(
        "\nA route lists the schemes it accepts; \"none\" means open, \"optional\" that the \
         route is open until the token is configured.\n\n",
    );
}

/// Who may call an operation, in words.
fn auth_of(op: &Value) -> String {
    let Some(reqs) = op["security"].as_array() else {
        return "none".into();
    };
    let mut names = Vec::new();
    let mut optional = false;
    for r in reqs {
        match r.as_object() {
            Some(m) if m.is_empty() => optional = true,
            Some(m) => names.extend(m.keys().map(|k| format!("`{k}`"))),
            None => {}
        }
    }
    match (names.is_empty(), optional) {
        (true, _) => "none".into(),
        (false, true) => format!("optional {}", names.join(" or ")),
        (false, false) => names.join(" or "),
    }
}

fn operation(out: &mut String, doc: &Value, op: &Op) {
    let o = op.op;
    let _ = writeln!(out, "### `{} {}`\n", op.method.to_uppercase(), op.path);
    if let Some(s) = o["summary"].as_str() {
        let _ = writeln!(out, "**{s}.**");
    }
    if let Some(d) = o["description"].as_str() {
        let _ = writeln!(out, "{d}");
    }
    let _ = writeln!(out, "\nAuth: {}.\n", auth_of(o));
    if let Some(params) = o["parameters"].as_array() {
        out.push_str("| Parameter | In | Type | Required | What |\n|---|---|---|---|---|\n");
        for p in params {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                p["name"].as_str().unwrap_or(""),
                p["in"].as_str().unwrap_or(""),
                cell(&type_of(&p["schema"])),
                if p["required"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                },
                cell(p["description"].as_str().unwrap_or(""))
            );
        }
        out.push('\n');
    }
    if let Some(body) = o["requestBody"].as_object() {
        for (ctype, media) in body["content"].as_object().into_iter().flatten() {
            let required = if body.get("required").and_then(Value::as_bool) == Some(true) {
                "required"
            } else {
                "optional"
            };
            let _ = writeln!(
                out,
                "Request body ({required}, `{ctype}`): {}.{}\n",
                type_of(&media["schema"]),
                body.get("description")
                    .and_then(Value::as_str)
                    .map(|d| format!(" {d}"))
                    .unwrap_or_default()
            );
            examples(out, media, "Request");
            // A named body schema carries its examples itself.
            let named = media["schema"]["$ref"]
                .as_str()
                .and_then(|r| r.rsplit('/').next());
            if let Some(name) = named {
                let schema = &doc["components"]["schemas"][name];
                for e in schema["examples"].as_array().into_iter().flatten() {
                    let _ = writeln!(out, "Request example:\n\n```json\n{}\n```\n", pretty(e));
                }
            }
        }
    }
    out.push_str("| Status | Body | What |\n|---|---|---|\n");
    let responses = o["responses"].as_object();
    for (status, r) in responses.into_iter().flatten() {
        let body = r["content"]
            .as_object()
            .and_then(|c| c.iter().next())
            .map(|(ctype, media)| match media.get("schema") {
                Some(s) if ctype == "application/json" => type_of(s),
                _ => format!("`{ctype}`"),
            })
            .unwrap_or_else(|| "—".into());
        let _ = writeln!(
            out,
            "| {status} | {} | {} |",
            cell(&body),
            cell(r["description"].as_str().unwrap_or(""))
        );
    }
    out.push('\n');
    for (status, r) in responses.into_iter().flatten() {
        for media in r["content"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, m)| m)
        {
            examples(out, media, status);
        }
    }
}

/// A media type's `example` and named `examples`, as JSON blocks.
fn examples(out: &mut String, media: &Value, label: &str) {
    if let Some(e) = media.get("example") {
        let _ = writeln!(out, "{label} example:\n\n```json\n{}\n```\n", pretty(e));
    }
    for (name, e) in media["examples"].as_object().into_iter().flatten() {
        let summary = e["summary"]
            .as_str()
            .map(|s| format!(" — {s}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{label} example `{name}`{summary}\n\n```json\n{}\n```\n",
            pretty(&e["value"])
        );
    }
}

fn schemas(out: &mut String, doc: &Value) {
    out.push_str("## Schemas\n\n");
    for (name, s) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let _ = writeln!(out, "### `{name}`\n");
        if let Some(d) = s["description"].as_str() {
            let _ = writeln!(out, "{d}\n");
        }
        let mut fields = Map::new();
        let mut required = Vec::new();
        let mut also = Vec::new();
        collect_fields(s, &mut fields, &mut required, &mut also);
        if let Some(values) = s["enum"].as_array() {
            let _ = writeln!(out, "One of: {}.\n", enum_values(values));
        } else if fields.is_empty() && also.is_empty() {
            let _ = writeln!(out, "Type: {}.\n", type_of(s));
        }
        if !also.is_empty() {
            let _ = writeln!(out, "{}.\n", also.join("; "));
        }
        if !fields.is_empty() {
            out.push_str("| Field | Type | Required | What |\n|---|---|---|---|\n");
            for (field, f) in &fields {
                let _ = writeln!(
                    out,
                    "| `{field}` | {} | {} | {} |",
                    cell(&type_of(f)),
                    if required.contains(field) {
                        "yes"
                    } else {
                        "no"
                    },
                    cell(f["description"].as_str().unwrap_or(""))
                );
            }
            out.push('\n');
        }
        for e in s["examples"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "Example:\n\n```json\n{}\n```\n", pretty(e));
        }
    }
}

/// The properties of an object schema, including those of `allOf` parts; other parts
/// (references, alternatives) are described in `also`.
fn collect_fields(
    s: &Value,
    fields: &mut Map<String, Value>,
    required: &mut Vec<String>,
    also: &mut Vec<String>,
) {
    if let Some(props) = s["properties"].as_object() {
        fields.extend(props.clone());
    }
    required.extend(
        s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string)),
    );
    for part in s["allOf"].as_array().into_iter().flatten() {
        if part.get("$ref").is_some() {
            also.push(format!("All fields of {}", type_of(part)));
        } else {
            collect_fields(part, fields, required, also);
        }
    }
    if let Some(alts) = s["anyOf"].as_array() {
        let each: Vec<String> = alts
            .iter()
            .map(|a| match a["required"].as_array() {
                Some(r) if a.get("properties").is_none() => r
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                _ => type_of(a),
            })
            .collect();
        also.push(format!("Needs at least one of: {}", each.join(", ")));
    }
    if let Some(map) = s.get("additionalProperties").filter(|a| a.is_object()) {
        also.push(format!("Other fields: {}", type_of(map)));
    }
}

/// A schema's type in words, with links to named schemas.
fn type_of(s: &Value) -> String {
    if let Some(r) = s["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("[`{name}`](#{})", name.to_lowercase());
    }
    for (key, word) in [("allOf", " and "), ("oneOf", " or "), ("anyOf", " or ")] {
        if let Some(parts) = s[key].as_array() {
            let mut parts: Vec<String> = parts.iter().map(type_of).filter(|t| t != "any").collect();
            // `null` reads best last: "[`X`] or null".
            if let Some(i) = parts.iter().position(|p| p == "null") {
                let null = parts.remove(i);
                parts.push(null);
            }
            if !parts.is_empty() {
                return parts.join(word);
            }
        }
    }
    if let Some(values) = s["enum"].as_array() {
        return enum_values(values);
    }
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let nullable = types.contains(&"null");
    let named: Vec<String> = types
        .iter()
        .filter(|t| **t != "null")
        .map(|t| match *t {
            "array" => format!("array of {}", type_of(&s["items"])),
            "object" => match s.get("additionalProperties") {
                Some(a) if a.is_object() => format!("map of {}", type_of(a)),
                _ => "object".to_string(),
            },
            other => other.to_string(),
        })
        .collect();
    match (named.is_empty(), nullable) {
        (true, true) => "null".to_string(),
        (true, false) => "any".to_string(),
        (false, true) => format!("{} or null", named.join(" or ")),
        (false, false) => named.join(" or "),
    }
}

fn enum_values(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| {
            format!(
                "`{}`",
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text for a table cell: one line, pipes escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// `docs/api.md` is what the document renders to. On a difference the test writes the
    /// new page and fails: review the diff and commit it with the change that caused it.
    #[test]
    fn docs_api_md_is_rendered_from_the_document() {
        let doc = serde_json::to_value(crate::api::openapi::reference_document())
            .expect("document serializes");
        let page = render(&doc);
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md");
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != page {
            std::fs::write(&path, &page).expect("write docs/api.md");
            panic!("docs/api.md was out of date and has been rewritten; review and commit it");
        }
        assert!(page.contains("### `POST /flow/codeblock`"));
    }
}
