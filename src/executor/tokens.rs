//! Access tokens for `POST /flow/codeblock` (header `accessToken`): fixed ones from
//! `[executor] access_tokens` and admin-issued ones stored in redb as SHA-256 digests only —
//! the plain token is shown once, when issued. Checks hash the candidate and compare it with
//! every known digest in constant time, without an early exit.

use std::sync::RwLock;

use base64::Engine;
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{Store, StoreError};

/// digest (hex) -> JSON [`TokenInfo`].
const TOKENS: TableDefinition<&str, &str> = TableDefinition::new("executor_tokens_v1");

/// What is stored and listed about an issued token (never the token).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// A just-issued token: the only time its text exists outside the client.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    pub token: String,
}

/// Who a valid token belongs to (rate limits key on `key`).
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub key: String,
    /// What `/flow/stats/users` counts under: an issued token's name (its id when it has
    /// none), `config token N` for the N-th configured one.
    pub name: String,
}

pub struct TokenStore {
    store: Store,
    /// Digests of `[executor] access_tokens`; a reload replaces them ([`TokenStore::set_fixed`]).
    fixed: RwLock<Vec<[u8; 32]>>,
    /// Issued tokens, mirrored from the store (this process is the store's only writer).
    issued: RwLock<Vec<([u8; 32], TokenInfo)>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(d: &[u8; 32]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

impl TokenStore {
    /// Loads the issued tokens; `fixed` are the configured ones.
    pub fn open(store: Store, fixed: &[String]) -> Result<Self, StoreError> {
        {
            let txn = store.begin_write()?;
            txn.open_table(TOKENS)?;
            txn.commit()?;
        }
        let mut issued = Vec::new();
        {
            let txn = store.begin_read()?;
            let table = txn.open_table(TOKENS)?;
            for row in table.iter()? {
                let (k, v) = row?;
                if let (Some(d), Ok(info)) = (
                    unhex(k.value()),
                    serde_json::from_str::<TokenInfo>(v.value()),
                ) {
                    issued.push((d, info));
                }
            }
        }
        Ok(Self {
            store,
            fixed: RwLock::new(fixed.iter().map(|t| digest(t)).collect()),
            issued: RwLock::new(issued),
        })
    }

    /// Puts reloaded `[executor] access_tokens` in force; issued tokens are not touched.
    pub fn set_fixed(&self, fixed: &[String]) {
        let digests = fixed.iter().map(|t| digest(t)).collect();
        *self.fixed.write().unwrap_or_else(|p| p.into_inner()) = digests;
    }

    /// Whether `candidate` is a valid token; constant time over all known digests.
    pub fn check(&self, candidate: &str) -> Option<TokenOwner> {
        if candidate.is_empty() {
            return None;
        }
        let d = digest(candidate);
        let mut found = subtle::Choice::from(0);
        // Every digest is compared (constant time in the token); which one matched only
        // picks the name.
        let mut name = None;
        let fixed = self.fixed.read().unwrap_or_else(|p| p.into_inner());
        for (i, f) in fixed.iter().enumerate() {
            let hit = f.ct_eq(&d);
            found |= hit;
            if bool::from(hit) {
                name = Some(format!("config token {}", i + 1));
            }
        }
        let issued = self.issued.read().unwrap_or_else(|p| p.into_inner());
        for (f, info) in issued.iter() {
            let hit = f.ct_eq(&d);
            found |= hit;
            if bool::from(hit) {
                let n = if info.name.is_empty() {
                    &info.id
                } else {
                    &info.name
                };
                name = Some(n.clone());
            }
        }
        bool::from(found).then(|| TokenOwner {
            key: hex(&d)[..16].to_string(),
            name: name.unwrap_or_default(),
        })
    }

    pub async fn issue(&self, name: String) -> Result<IssuedToken, StoreError> {
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let token = format!(
            "kt_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let info = TokenInfo {
            id: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            name,
            created_at: crate::clock::now_rfc3339(),
        };
        let d = digest(&token);
        let key = hex(&d);
        let value = serde_json::to_string(&info)?;
        self.store
            .write(move |txn| {
                let mut t = txn.open_table(TOKENS)?;
                t.insert(key.as_str(), value.as_str())?;
                Ok(())
            })
            .await?;
        self.issued
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((d, info.clone()));
        Ok(IssuedToken { info, token })
    }

    pub fn list(&self) -> Vec<TokenInfo> {
        self.issued
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, i)| i.clone())
            .collect()
    }

    /// Revokes by id; false when no such token.
    pub async fn revoke(&self, id: &str) -> Result<bool, StoreError> {
        let Some(d) = self
            .issued
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, i)| i.id == id)
            .map(|(d, _)| *d)
        else {
            return Ok(false);
        };
        let key = hex(&d);
        self.store
            .write(move |txn| {
                let mut t = txn.open_table(TOKENS)?;
                t.remove(key.as_str())?;
                Ok(())
            })
            .await?;
        self.issued
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(x, _)| *x != d);
        Ok(true)
    }
}
