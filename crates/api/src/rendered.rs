//! Rendered instances: the JSON body a GET answers with, kept per name with the resource version
//! it shows, so a read of an instance that has not changed since it was last rendered costs one
//! small query (which says "unchanged" instead of sending the stored documents) and no JSON work.
//!
//! Every read still asks PostgreSQL for the row's current version first
//! ([`instances::get_resource_unless`], [`instances::list_versions`]): the cache never answers
//! on its own, so a read is exactly as fresh as without it, on every replica. A version is handed
//! out once, on any change to what the API shows, so equal versions mean equal bodies. The
//! cache is bounded by bytes ([`DEFAULT_CAPACITY_BYTES`] unless configured); what does not fit is
//! rendered again on its next read.

use bytes::Bytes;
use openclaws_model::secrets::SecretCipher;
use openclaws_store::records::ResourceRecord;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use std::sync::Arc;

/// The cache's default bound: 16 MiB holds about 5,000 instances of 3 KiB.
pub const DEFAULT_CAPACITY_BYTES: u64 = 16 << 20;

/// One instance rendered as the API shows it.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The `resourceVersion` the body shows.
    pub version: i64,
    /// The JSON body (`OpenClawInstance`).
    pub body: Bytes,
}

/// Weighs an entry by its bytes (name, body and bookkeeping).
#[derive(Debug, Clone, Copy)]
struct ByBytes;

impl Weighter<Arc<str>, Rendered> for ByBytes {
    fn weight(&self, name: &Arc<str>, rendered: &Rendered) -> u64 {
        (name.len() + rendered.body.len() + 64) as u64
    }
}

/// Rendered instances by name, bounded by bytes. Cheap to clone (shared).
#[derive(Clone)]
pub struct RenderCache {
    entries: Arc<Cache<Arc<str>, Rendered, ByBytes>>,
}

impl std::fmt::Debug for RenderCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderCache")
            .field("entries", &self.entries.len())
            .field("bytes", &self.entries.weight())
            .finish()
    }
}

impl Default for RenderCache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY_BYTES)
    }
}

impl RenderCache {
    /// A cache holding at most `bytes` of rendered instances (0: none is kept).
    pub fn with_capacity(bytes: u64) -> Self {
        let estimated_items = (bytes / 3072).clamp(16, 1 << 20) as usize;
        Self {
            entries: Arc::new(Cache::with_weighter(estimated_items, bytes.max(1), ByBytes)),
        }
    }

    /// The version of `name` this cache holds a body for, to ask the database whether it is
    /// still current.
    pub fn get(&self, name: &str) -> Option<Rendered> {
        self.entries.get(name)
    }

    /// Renders `record` and keeps the body for the next read.
    pub fn render(
        &self,
        record: ResourceRecord,
        cipher: &SecretCipher,
    ) -> Result<Rendered, serde_json::Error> {
        let name: Arc<str> = record.name.as_str().into();
        let version = record.resource_version;
        let body = serde_json::to_vec(&record.into_resource(cipher))?;
        let rendered = Rendered {
            version,
            body: body.into(),
        };
        self.entries.insert(name, rendered.clone());
        Ok(rendered)
    }
}

/// The body of a page of instances: `envelope` (the list serialized with no items) with the
/// rendered bodies spliced in as its `items`, so no instance is serialized again.
pub fn list_body(envelope: &[u8], items: &[Rendered]) -> Option<Vec<u8>> {
    const EMPTY: &[u8] = b"\"items\":[]";
    let at = envelope.windows(EMPTY.len()).position(|w| w == EMPTY)? + EMPTY.len() - 1;
    let size: usize = items.iter().map(|r| r.body.len() + 1).sum();
    let mut body = Vec::with_capacity(envelope.len() + size);
    body.extend_from_slice(&envelope[..at]);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&item.body);
    }
    body.extend_from_slice(&envelope[at..]);
    Some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openclaws_model::{ListMeta, OpenClawInstanceList};

    fn rendered(name: &str, version: i64) -> Rendered {
        let body =
            serde_json::json!({"metadata": {"name": name, "resourceVersion": version.to_string()}});
        Rendered {
            version,
            body: serde_json::to_vec(&body).unwrap().into(),
        }
    }

    #[test]
    fn a_spliced_list_is_the_list_serialized_whole() {
        let items = [rendered("a", 1), rendered("b", 7), rendered("c", 9)];
        let envelope = OpenClawInstanceList {
            api_version: "v".to_owned(),
            kind: "OpenClawInstanceList".to_owned(),
            items: Vec::new(),
            metadata: ListMeta {
                continue_: Some("x".to_owned()),
                resource_version: Some("12".to_owned()),
            },
        };
        let spliced = list_body(&serde_json::to_vec(&envelope).unwrap(), &items).unwrap();
        let mut whole = serde_json::to_value(&envelope).unwrap();
        whole["items"] = items
            .iter()
            .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap())
            .collect();
        let spliced: serde_json::Value = serde_json::from_slice(&spliced).unwrap();
        assert_eq!(spliced, whole);
        let none = list_body(&serde_json::to_vec(&envelope).unwrap(), &[]).unwrap();
        assert_eq!(none, serde_json::to_vec(&envelope).unwrap());
    }

    #[test]
    fn the_cache_keeps_what_fits_and_forgets_the_rest() {
        let cache = RenderCache::with_capacity(1 << 20);
        assert!(cache.get("a").is_none());
        cache.entries.insert("a".into(), rendered("a", 3));
        assert_eq!(cache.get("a").map(|r| r.version), Some(3));
        let tiny = RenderCache::with_capacity(10);
        tiny.entries.insert("a".into(), rendered("a", 3));
        assert!(
            tiny.get("a").is_none(),
            "an entry heavier than the bound is not kept"
        );
    }
}
