//! Contexts kept warm between calls of one access token (`[executor] reuse_contexts`).
//!
//! A fresh context per call keeps every call's library state its own, at the price of
//! deserializing the libraries' objects each time (0.4 ms for one library, ~1.9 ms for the
//! reference's seven) and running them without optimised code. Operators who run one
//! tenant's blocks — or who trust their tokens' users as the reference and a Node `vm`
//! service trust theirs — can keep a finished call's context for the same token's next
//! call of the same kind instead.
//!
//! What is shared is what the libraries and built-ins hold; what a block leaves on the global
//! object is not: a context whose global object has more or fewer own properties after a call
//! (`x = 1` in sloppy code, `globalThis.cache = …`, `delete globalThis.fetch`) goes — a count,
//! so a global given a new value, or one added and another removed, stays unseen: the same
//! token's state either way — and so does one whose call failed, timed out or left work
//! pending. A context serves at most [`MAX_USES`] calls;
//! each isolate keeps at most [`PER_ISOLATE`], the least recently used going first.

use super::requires::ContextKind;

/// Warm contexts one isolate keeps (each holds a context's objects: 0.2-2 MB of heap).
const PER_ISOLATE: usize = 4;
/// Calls one context serves before a fresh one takes over (what a long-lived context
/// accumulates — caches a library fills, feedback — is bounded by its calls).
const MAX_USES: u32 = 1_000;

/// A finished call's context, ready for its tenant's next call of the same kind.
pub(super) struct WarmContext {
    tenant: String,
    kind: ContextKind,
    pub(super) context: v8::Global<v8::Context>,
    /// Calls it has served.
    pub(super) uses: u32,
    /// Own properties of its global object (symbols and non-enumerable ones included) when
    /// it was first handed to a call, `input` defined.
    pub(super) globals: u32,
}

impl WarmContext {
    /// A context from the snapshot that a call is about to use; `globals` as
    /// [`global_count`] gave it before the call.
    pub(super) fn fresh(
        tenant: &str,
        kind: ContextKind,
        context: v8::Global<v8::Context>,
        globals: u32,
    ) -> WarmContext {
        WarmContext {
            tenant: tenant.to_string(),
            kind,
            context,
            uses: 0,
            globals,
        }
    }
}

/// One isolate's warm contexts, most recently used last.
#[derive(Default)]
pub(super) struct WarmContexts {
    entries: Vec<WarmContext>,
}

impl WarmContexts {
    /// The warm context for `tenant`'s call of `kind`, taken out (it comes back through
    /// [`WarmContexts::keep`] if the call leaves it reusable).
    pub(super) fn take(&mut self, tenant: &str, kind: ContextKind) -> Option<WarmContext> {
        let at = self
            .entries
            .iter()
            .rposition(|e| e.tenant == tenant && e.kind == kind)?;
        Some(self.entries.remove(at))
    }

    /// Keeps a context after a call that left it reusable.
    pub(super) fn keep(&mut self, warm: WarmContext) {
        if warm.uses >= MAX_USES {
            return;
        }
        if self.entries.len() >= PER_ISOLATE {
            self.entries.remove(0);
        }
        self.entries.push(warm);
    }
}

/// How many own properties `context`'s global object has (every kind: symbols and
/// non-enumerable ones too), after defining `input` so that the first call's own `input`
/// does not count as a change. `None` when V8 cannot list them.
pub(super) fn global_count(
    isolate: &mut v8::OwnedIsolate,
    context: &v8::Global<v8::Context>,
) -> Option<u32> {
    v8::scope!(let scope, isolate);
    let context = v8::Local::new(scope, context);
    let scope = &mut v8::ContextScope::new(scope, context);
    let global = context.global(scope);
    let input = v8::String::new(scope, "input")?;
    if !global.has_own_property(scope, input.into())? {
        let undefined = v8::undefined(scope);
        global.set(scope, input.into(), undefined.into())?;
    }
    let args = v8::GetPropertyNamesArgs {
        mode: v8::KeyCollectionMode::OwnOnly,
        property_filter: v8::PropertyFilter::ALL_PROPERTIES,
        index_filter: v8::IndexFilter::IncludeIndices,
        key_conversion: v8::KeyConversionMode::KeepNumbers,
    };
    Some(global.get_own_property_names(scope, args)?.length())
}
