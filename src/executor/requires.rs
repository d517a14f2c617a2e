//! Which snapshot context a block starts from: the modules its code names in
//! `require('…')` string literals decide (see snapshot.rs for what each context holds and
//! costs). A textual hint only — a block that reaches a module another way still gets it,
//! from runtime.js's lazy path — so a miss costs time, never correctness.

use super::snapshot::{self, COMMON, HEAVY, MODULES};

/// Where a call's context comes from: the lean default context, or snapshot context `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum ContextKind {
    Lean,
    Snapshot(usize),
}

impl ContextKind {
    /// Every kind, lean first; a kind's position is its [`ContextKind::slot`].
    pub(super) fn all() -> impl Iterator<Item = ContextKind> {
        std::iter::once(ContextKind::Lean).chain((0..snapshot::CONTEXTS).map(ContextKind::Snapshot))
    }

    /// Dense index of the kind (0 lean, 1 + snapshot index).
    pub(super) fn slot(self) -> usize {
        match self {
            ContextKind::Lean => 0,
            ContextKind::Snapshot(n) => n + 1,
        }
    }

    /// The context for `code`: no bundled module required → lean; one → that module's; two
    /// with a pair context → that; more → the common one, or a heavy module's own context
    /// when one is among them
    /// (the others are then instantiated on `require`); only a `require` whose module the
    /// code does not spell out (`require(name)`) → common.
    pub(super) fn for_code(code: &str) -> ContextKind {
        let (required, computed) = scan(code);
        match required.as_slice() {
            [] if computed => ContextKind::Snapshot(COMMON),
            [] => ContextKind::Lean,
            [one] => ContextKind::Snapshot(snapshot::single(*one)),
            many => {
                if let [a, b] = many {
                    if let Some(pair) = snapshot::pair(*a, *b) {
                        return ContextKind::Snapshot(pair);
                    }
                }
                match many.iter().find(|m| HEAVY.contains(&MODULES[**m])) {
                    Some(heavy) => ContextKind::Snapshot(snapshot::single(*heavy)),
                    None => ContextKind::Snapshot(COMMON),
                }
            }
        }
    }
}

/// Indices (into [`MODULES`], sorted, distinct) of the bundled modules named in
/// `require('name')`, `require("name/sub")` or `` require(`name`) `` literals, and whether
/// `require` also appears in any other form (a computed name, `const r = require`).
/// Literals naming anything else (`require('node:crypto')`) need no module context.
pub(super) fn scan(code: &str) -> (Vec<usize>, bool) {
    let mut found = Vec::new();
    let mut computed = false;
    let mut rest = code;
    while let Some(at) = rest.find("require") {
        rest = &rest[at + "require".len()..];
        match literal_argument(rest) {
            Some(name) => {
                let top = name.split('/').next().unwrap_or(name);
                if let Some(i) = MODULES.iter().position(|m| *m == top) {
                    found.push(i);
                }
            }
            None => computed = true,
        }
    }
    found.sort_unstable();
    found.dedup();
    (found, computed)
}

/// The string of `( 'literal' )` at the start of `s` (whitespace allowed), if it is one.
fn literal_argument(s: &str) -> Option<&str> {
    let s = s.trim_start().strip_prefix('(')?.trim_start();
    let quote = s.chars().next().filter(|c| matches!(c, '\'' | '"' | '`'))?;
    let body = &s[1..];
    let end = body.find(quote)?;
    let name = &body[..end];
    (!name.contains(['\\', '\n', '$'])).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(name: &str) -> usize {
        MODULES.iter().position(|m| *m == name).expect("module")
    }

    #[test]
    fn literals_pick_the_context() {
        assert_eq!(
            ContextKind::for_code("return input.a + 1"),
            ContextKind::Lean
        );
        assert_eq!(
            ContextKind::for_code("const _ = require('lodash'); return _.sum([1])"),
            ContextKind::Snapshot(snapshot::single(index("lodash")))
        );
        assert_eq!(
            ContextKind::for_code(r#"require( "dayjs/plugin/utc" ); require(`dayjs`)"#),
            ContextKind::Snapshot(snapshot::single(index("dayjs")))
        );
        assert_eq!(
            ContextKind::for_code("require('lodash'); require('crypto-js')"),
            ContextKind::Snapshot(
                snapshot::pair(index("crypto-js"), index("lodash")).expect("a pair context")
            )
        );
        assert_eq!(
            ContextKind::for_code("require('lodash'); require('crypto-js'); require('qs')"),
            ContextKind::Snapshot(COMMON)
        );
        assert_eq!(
            ContextKind::for_code("require('lodash'); require('dayjs')"),
            ContextKind::Snapshot(COMMON)
        );
        assert_eq!(
            ContextKind::for_code("require('lodash'); require('xlsx')"),
            ContextKind::Snapshot(snapshot::single(index("xlsx")))
        );
        // Dynamic names and unknown modules: the common context (runtime.js loads the rest).
        assert_eq!(
            ContextKind::for_code("require(name)"),
            ContextKind::Snapshot(COMMON)
        );
        assert_eq!(
            ContextKind::for_code("require(`${x}`); require('left-pad')"),
            ContextKind::Snapshot(COMMON)
        );
    }

    #[test]
    fn slots_are_dense() {
        let slots: Vec<usize> = ContextKind::all().map(ContextKind::slot).collect();
        assert_eq!(slots, (0..=snapshot::CONTEXTS).collect::<Vec<_>>());
    }
}
