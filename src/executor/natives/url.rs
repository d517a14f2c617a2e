//! `URL`: parsing and the WHATWG setters through the `url` crate (rust-url, which follows
//! the URL Standard and its web-platform tests); the prelude's `URL` class keeps only the
//! serialized `href` and asks here for its parts.

use super::super::js_values::{bounded_string, throw};

/// Longest input (UTF-16 units) the URL natives take; longer ones are a parse failure.
const MAX_URL_INPUT: usize = 1024 * 1024;

/// The parts of a URL in the order the prelude reads them.
fn parts<'s>(scope: &mut v8::PinScope<'s, '_>, url: &url::Url) -> v8::Local<'s, v8::Value> {
    use url::quirks as q;
    let fields = [
        q::href(url).to_string(),
        q::origin(url),
        q::protocol(url).to_string(),
        q::username(url).to_string(),
        q::password(url).to_string(),
        q::host(url).to_string(),
        q::hostname(url).to_string(),
        q::port(url).to_string(),
        q::pathname(url).to_string(),
        q::search(url).to_string(),
        q::hash(url).to_string(),
    ];
    let values: Vec<v8::Local<v8::Value>> = fields
        .iter()
        .map(|f| {
            v8::String::new(scope, f)
                .map(Into::into)
                .unwrap_or_else(|| v8::String::empty(scope).into())
        })
        .collect();
    v8::Array::new_with_elements(scope, &values).into()
}

/// `urlParse(input, base?)`: the parts of the parsed URL, or `null` when it does not parse.
pub(super) fn native_url_parse(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    let Some(input) = bounded_string(scope, args.get(0), MAX_URL_INPUT) else {
        rv.set_null();
        return;
    };
    let base_arg = args.get(1);
    let parsed = if base_arg.is_undefined() {
        url::Url::parse(&input)
    } else {
        let Some(base) = bounded_string(scope, base_arg, MAX_URL_INPUT) else {
            rv.set_null();
            return;
        };
        url::Url::parse(&base).and_then(|b| b.join(&input))
    };
    match parsed {
        Ok(u) => rv.set(parts(scope, &u)),
        Err(_) => rv.set_null(),
    }
}

/// `urlSet(href, setter, value)`: the parts after applying one WHATWG setter to `href`
/// (setters that refuse a value leave the URL unchanged, as the standard says), or `null`
/// when `href` itself does not parse or the `href` setter gets an invalid URL.
pub(super) fn native_url_set(
    scope: &mut v8::PinScope<'_, '_>,
    args: v8::FunctionCallbackArguments<'_>,
    mut rv: v8::ReturnValue<'_, v8::Value>,
) {
    use url::quirks as q;
    let (Some(href), Some(setter), Some(value)) = (
        bounded_string(scope, args.get(0), MAX_URL_INPUT),
        bounded_string(scope, args.get(1), 16),
        bounded_string(scope, args.get(2), MAX_URL_INPUT),
    ) else {
        throw(
            scope,
            "TypeError",
            "urlSet: expected (href, setter, value) strings",
        );
        return;
    };
    let Ok(mut url) = url::Url::parse(&href) else {
        rv.set_null();
        return;
    };
    let u = &mut url;
    match setter.as_str() {
        "href" => {
            if q::set_href(u, &value).is_err() {
                rv.set_null();
                return;
            }
        }
        "protocol" => {
            let _ = q::set_protocol(u, &value);
        }
        "username" => {
            let _ = q::set_username(u, &value);
        }
        "password" => {
            let _ = q::set_password(u, &value);
        }
        "host" => {
            let _ = q::set_host(u, &value);
        }
        "hostname" => {
            let _ = q::set_hostname(u, &value);
        }
        "port" => {
            let _ = q::set_port(u, &value);
        }
        "pathname" => q::set_pathname(u, &value),
        "search" => q::set_search(u, &value),
        "hash" => q::set_hash(u, &value),
        _ => {
            throw(scope, "TypeError", "urlSet: unknown setter");
            return;
        }
    }
    rv.set(parts(scope, &url));
}
