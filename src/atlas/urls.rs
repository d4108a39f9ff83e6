//! Request URLs of one profile: its base URL, parsed once, with an operation's path
//! template filled in, each id percent-encoded as one path segment. The URLs of calls
//! without a query string and with plain ids (letters, digits, `-`, `_`) are remembered
//! (up to [`REMEMBERED`], then forgotten all at once), so a call for the same operation
//! and ids shares a finished URL instead of building one: building costs several passes
//! of the URL parser per call. The look-up key is put together on the stack.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use reqwest::Url;

use super::client::AtlasRequest;

/// How many URLs a profile remembers (a sidecar calls for few orgs; a caller cycling
/// through many only costs the builds it would cost anyway).
pub const REMEMBERED: usize = 256;

/// One profile's request URLs.
pub struct Urls {
    base: Url,
    /// Finished URLs by path (`/api/atlas/v2/orgs/{id}/...`).
    built: Mutex<HashMap<String, Arc<Url>>>,
}

impl Urls {
    /// The URLs under `base`.
    pub fn new(base: Url) -> Self {
        Self {
            base,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The profile's base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL of `req`.
    pub fn get(&self, req: &AtlasRequest<'_>) -> Arc<Url> {
        // Only ids that cannot hold a separator are remembered, so that the path names
        // the URL unambiguously (ids are validated upstream of here; this does not rely on
        // it).
        if req.query.is_some()
            || !plain(req.org_id)
            || !plain(req.api_key_id)
            || !plain(req.secret_id)
        {
            return Arc::new(self.build(req));
        }
        let mut key = PathKey::default();
        for segment in segments(req) {
            key.push("/");
            key.push(segment);
        }
        let Some(path) = key.as_str() else {
            return Arc::new(self.build(req)); // ids too long to be Atlas ids
        };
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(url) = built.get(path) {
            return Arc::clone(url);
        }
        let url = Arc::new(self.build(req));
        if built.len() >= REMEMBERED {
            built.clear();
        }
        built.insert(path.to_string(), Arc::clone(&url));
        url
    }

    /// The base URL with the template's segments pushed onto its path (each
    /// percent-encoded as a segment) and the query.
    fn build(&self, req: &AtlasRequest<'_>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments(req));
        }
        url.set_query(req.query.as_deref());
        url
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.built.lock().unwrap().len()
    }
}

/// A path of at most [`PathKey::CAPACITY`] bytes, put together without allocating.
struct PathKey {
    bytes: [u8; PathKey::CAPACITY],
    /// Bytes used; past `CAPACITY` when the path did not fit.
    len: usize,
}

impl PathKey {
    const CAPACITY: usize = 192;

    fn push(&mut self, s: &str) {
        let end = self.len + s.len();
        if let Some(room) = self.bytes.get_mut(self.len..end) {
            room.copy_from_slice(s.as_bytes());
        }
        self.len = end;
    }

    /// The path, unless it did not fit.
    fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes.get(..self.len)?).ok()
    }
}

impl Default for PathKey {
    fn default() -> Self {
        PathKey {
            bytes: [0; PathKey::CAPACITY],
            len: 0,
        }
    }
}

/// An id made only of ASCII letters, digits, `-` and `_` (Atlas ids are hex).
fn plain(id: &str) -> bool {
    id.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The template's path segments with the request's ids in place of the placeholders.
fn segments<'a>(req: &'a AtlasRequest<'_>) -> impl Iterator<Item = &'a str> {
    req.op
        .template()
        .split('/')
        .skip(1)
        .map(|segment| match segment {
            "{orgId}" => req.org_id,
            "{apiUserId}" | "{clientId}" => req.api_key_id,
            "{secretId}" => req.secret_id,
            literal => literal,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atlas::Operation;

    fn req<'a>(
        op: Operation,
        org_id: &'a str,
        key: &'a str,
        query: Option<&str>,
    ) -> AtlasRequest<'a> {
        AtlasRequest {
            op,
            org_id,
            api_key_id: key,
            secret_id: "",
            query: query.map(str::to_string),
            body: None,
        }
    }

    fn url(base: &str, op: Operation, key: &str, query: Option<&str>) -> String {
        let urls = Urls::new(Url::parse(base).unwrap());
        let req = req(op, "5f1a0c2b3d4e5f6a7b8c9d0e", key, query);
        let first = urls.get(&req).to_string();
        assert_eq!(
            urls.get(&req).to_string(),
            first,
            "the remembered URL is the same"
        );
        first
    }

    #[test]
    fn urls_fill_the_template_under_the_base_path() {
        let org = "https://cloud.mongodb.com/api/atlas/v2/orgs/5f1a0c2b3d4e5f6a7b8c9d0e";
        assert_eq!(
            url(
                "https://cloud.mongodb.com",
                Operation::CreateLinkToken,
                "",
                None
            ),
            format!("{org}/liveMigrations/linkTokens")
        );
        assert_eq!(
            url(
                "https://cloud.mongodb.com/",
                Operation::DeleteApiKey,
                "6a7b",
                None
            ),
            format!("{org}/apiKeys/6a7b")
        );
        assert_eq!(
            url("http://127.0.0.1:8080/prefix/", Operation::CreateApiKeyAccessList, "6a7b", None),
            "http://127.0.0.1:8080/prefix/api/atlas/v2/orgs/5f1a0c2b3d4e5f6a7b8c9d0e/apiKeys/6a7b/accessList"
        );
        assert_eq!(
            url("http://127.0.0.1:8080/prefix", Operation::ListApiKeys, "", Some("itemsPerPage=5&pageNum=2")),
            "http://127.0.0.1:8080/prefix/api/atlas/v2/orgs/5f1a0c2b3d4e5f6a7b8c9d0e/apiKeys?itemsPerPage=5&pageNum=2"
        );
        // An id is one segment, whatever it holds (validation keeps such ids out anyway).
        assert_eq!(
            url(
                "https://cloud.mongodb.com",
                Operation::DeleteApiKey,
                "a/../b?c",
                None
            ),
            format!("{org}/apiKeys/a%2F..%2Fb%3Fc")
        );
    }

    #[test]
    fn remembered_urls_are_per_operation_and_ids_and_bounded() {
        let urls = Urls::new(Url::parse("https://cloud.mongodb.com").unwrap());
        let create = urls.get(&req(Operation::CreateApiKey, "aa", "", None));
        let delete = urls.get(&req(Operation::DeleteApiKey, "aa", "k1", None));
        let other_org = urls.get(&req(Operation::CreateApiKey, "bb", "", None));
        assert_ne!(create, delete);
        assert_ne!(create, other_org);
        assert!(other_org.path().contains("/orgs/bb/"));
        // Lists (a query string) are built, not remembered.
        urls.get(&req(Operation::ListApiKeys, "aa", "", Some("pageNum=1")));
        assert_eq!(urls.remembered(), 3);
        // Ids that could make two requests' paths alike are never remembered.
        let list = urls.get(&req(Operation::CreateApiKeyAccessList, "aa", "k", None));
        let odd = urls.get(&req(Operation::DeleteApiKey, "aa", "k/accessList", None));
        assert_eq!(list.path(), "/api/atlas/v2/orgs/aa/apiKeys/k/accessList");
        assert_eq!(odd.path(), "/api/atlas/v2/orgs/aa/apiKeys/k%2FaccessList");
        assert_eq!(urls.remembered(), 4);
        // A path too long for the stack key is built, not remembered.
        let long = "a".repeat(300);
        let url = urls.get(&req(Operation::CreateLinkToken, &long, "", None));
        assert_eq!(
            url.path(),
            format!("/api/atlas/v2/orgs/{long}/liveMigrations/linkTokens")
        );
        assert_eq!(urls.remembered(), 4);
        for i in 0..REMEMBERED + 10 {
            let org = format!("{i:024x}");
            let url = urls.get(&req(Operation::CreateLinkToken, &org, "", None));
            assert!(url.path().contains(&org));
            assert!(urls.remembered() <= REMEMBERED);
        }
    }
}
