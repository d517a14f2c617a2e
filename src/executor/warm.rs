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
//! pending. A context serves at most [`MAX_USES`] calls; each isolate keeps at most
//! [`PER_ISOLATE`], the least recently used going first, and none after a call that left
//! the isolate's heap grown, or its array buffers holding, more than a quarter of their
//! limits ([`within_share`]).

use super::requires::ContextKind;

/// Warm contexts one isolate keeps (each holds a context's objects: 0.2-2 MB of heap).
const PER_ISOLATE: usize = 4;
/// Calls one context serves before a fresh one takes over (what a long-lived context
/// accumulates — caches a library fills, feedback — is bounded by its calls).
const MAX_USES: u32 = 1_000;

/// A call's context with what decides whether it may serve the next call.
pub(super) struct WarmContext {
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
    pub(super) fn fresh(context: v8::Global<v8::Context>, globals: u32) -> WarmContext {
        WarmContext {
            context,
            uses: 0,
            globals,
        }
    }
}

/// One isolate's warm contexts, each with the tenant and kind it serves, most recently used
/// last.
#[derive(Default)]
pub(super) struct WarmContexts {
    entries: Vec<(String, ContextKind, WarmContext)>,
}

impl WarmContexts {
    /// The warm context for `tenant`'s call of `kind`, taken out (it comes back through
    /// [`WarmContexts::keep`] if the call leaves it reusable).
    pub(super) fn take(&mut self, tenant: &str, kind: ContextKind) -> Option<WarmContext> {
        let at = self
            .entries
            .iter()
            .rposition(|(t, k, _)| t == tenant && *k == kind)?;
        Some(self.entries.remove(at).2)
    }

    /// Keeps a context for `tenant`'s next call of `kind`, after a call that left it
    /// reusable.
    pub(super) fn keep(&mut self, tenant: &str, kind: ContextKind, warm: WarmContext) {
        if warm.uses >= MAX_USES {
            return;
        }
        if self.entries.len() >= PER_ISOLATE {
            self.entries.remove(0);
        }
        self.entries.push((tenant.to_string(), kind, warm));
    }
}

/// Whether an isolate may keep a call's context when, after the call, its heap holds
/// `heap_growth` bytes more than when it was new (its snapshot and ready contexts) and its
/// array buffers `buffers` bytes: at most a quarter of each limit, so what warm contexts
/// hold — some token's state — never takes more than that from the next call on the
/// isolate, whoever's it is. (A call that left much garbage not yet collected counts it
/// too: a missed reuse, no more.)
pub(super) fn within_share(
    heap_growth: usize,
    heap_limit: usize,
    buffers: usize,
    buffer_limit: usize,
) -> bool {
    heap_growth <= heap_limit / 4 && buffers <= buffer_limit / 4
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare isolate (no snapshot: the bookkeeping does not care what a context holds).
    fn isolate() -> v8::OwnedIsolate {
        super::super::platform::init();
        v8::Isolate::new(Default::default())
    }

    fn context(isolate: &mut v8::OwnedIsolate) -> v8::Global<v8::Context> {
        v8::scope!(let scope, isolate);
        let context = v8::Context::new(scope, Default::default());
        v8::Global::new(scope, context)
    }

    fn run(isolate: &mut v8::OwnedIsolate, context: &v8::Global<v8::Context>, code: &str) {
        v8::scope!(let scope, isolate);
        let context = v8::Local::new(scope, context);
        let scope = &mut v8::ContextScope::new(scope, context);
        let code = v8::String::new(scope, code).expect("string");
        let script = v8::Script::compile(scope, code, None).expect("compiles");
        script.run(scope).expect("runs");
    }

    #[test]
    fn a_tenant_gets_only_its_own_kind_and_the_oldest_goes_first() {
        let mut iso = isolate();
        let mut warm = WarmContexts::default();
        for tenant in ["a", "b", "c", "d", "e"] {
            let c = context(&mut iso);
            warm.keep(tenant, ContextKind::Lean, WarmContext::fresh(c, 0));
        }
        // Five kept into four places: "a", the least recently used, is gone.
        assert!(warm.take("a", ContextKind::Lean).is_none());
        assert!(warm.take("b", ContextKind::Snapshot(0)).is_none());
        let b = warm.take("b", ContextKind::Lean).expect("b's context");
        assert!(warm.take("b", ContextKind::Lean).is_none(), "taken out");
        warm.keep("b", ContextKind::Lean, b);
        assert!(warm.take("b", ContextKind::Lean).is_some());
    }

    #[test]
    fn a_context_is_not_kept_past_its_uses() {
        let mut iso = isolate();
        let mut warm = WarmContexts::default();
        let mut w = WarmContext::fresh(context(&mut iso), 0);
        w.uses = MAX_USES - 1;
        warm.keep("a", ContextKind::Lean, w);
        let mut w = warm
            .take("a", ContextKind::Lean)
            .expect("kept below the limit");
        w.uses = MAX_USES;
        warm.keep("a", ContextKind::Lean, w);
        assert!(warm.take("a", ContextKind::Lean).is_none());
    }

    #[test]
    fn the_global_count_sees_added_and_removed_globals_not_new_values() {
        let mut iso = isolate();
        let c = context(&mut iso);
        let before = global_count(&mut iso, &c).expect("count");
        run(
            &mut iso,
            &c,
            "input = 5; Math.answer = 42; Array.prototype.x = 1",
        );
        assert_eq!(
            global_count(&mut iso, &c),
            Some(before),
            "values and built-ins"
        );
        run(&mut iso, &c, "added = 1");
        assert_eq!(global_count(&mut iso, &c), Some(before + 1));
        run(
            &mut iso,
            &c,
            "delete globalThis.added; delete globalThis.JSON",
        );
        assert_eq!(global_count(&mut iso, &c), Some(before - 1));
    }
}
