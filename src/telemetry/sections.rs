//! Named JSON summaries that domain modules contribute (e.g. `gateway`, `ledger`), so the
//! core's `/api/metrics` can include them without importing the domains.

use serde_json::Value;
use std::sync::RwLock;

type Provider = Box<dyn Fn() -> Value + Send + Sync>;

#[derive(Default)]
pub struct Sections {
    providers: RwLock<Vec<(String, Provider)>>,
}

impl Sections {
    pub fn add(&self, name: &str, provider: impl Fn() -> Value + Send + Sync + 'static) {
        self.providers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_string(), Box::new(provider)));
    }

    pub fn collect(&self) -> Vec<(String, Value)> {
        self.providers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, f)| (n.clone(), f()))
            .collect()
    }
}
