//! AIP-158 page tokens over Atlas's page numbers. A token is opaque to callers (URL-safe
//! base64) and bound to the org and the page size it was made for, so it cannot be
//! replayed against another org or with another size. It carries no secret: only the
//! org id, the page size and the page number. It never talks to Atlas.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};

/// Page size when the request leaves it at 0 (Atlas's default).
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest page size; larger requests are served this many (AIP-158 coerces).
pub const MAX_PAGE_SIZE: u32 = 500;

const VERSION: &str = "v1";

/// The page size to ask Atlas for; `None` for a negative request (invalid).
pub fn page_size(requested: i32) -> Option<u32> {
    match u32::try_from(requested) {
        Ok(0) => Some(DEFAULT_PAGE_SIZE),
        Ok(n) => Some(n.min(MAX_PAGE_SIZE)),
        Err(_) => None,
    }
}

/// The token for page `page` (1-based) of `org_id` at `size` items per page.
pub fn encode(org_id: &str, size: u32, page: u32) -> String {
    URL_SAFE_NO_PAD.encode(format!("{VERSION}|{org_id}|{size}|{page}"))
}

/// The page number a token stands for, or why it cannot be used with this org and size.
pub fn decode(token: &str, org_id: &str, size: u32) -> Result<u32, &'static str> {
    const MALFORMED: &str = "page_token is not a token this gateway issued; use the next_page_token of a previous response, or leave it empty";
    let text = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(MALFORMED)?;
    let parts: Vec<&str> = text.split('|').collect();
    let [VERSION, org, token_size, page] = parts.as_slice() else {
        return Err(MALFORMED);
    };
    let page = page
        .parse::<u32>()
        .ok()
        .filter(|p| *p >= 2)
        .ok_or(MALFORMED)?;
    if *org != org_id {
        return Err("page_token was issued for another org_id");
    }
    if token_size.parse::<u32>().ok() != Some(size) {
        return Err(
            "page_token was issued for another page_size; keep page_size the same across pages",
        );
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "5f1a0c2b3d4e5f6a7b8c9d0e";

    #[test]
    fn sizes_default_and_cap() {
        assert_eq!(page_size(0), Some(100));
        assert_eq!(page_size(7), Some(7));
        assert_eq!(page_size(500), Some(500));
        assert_eq!(page_size(501), Some(500));
        assert_eq!(page_size(-1), None);
    }

    #[test]
    fn tokens_round_trip_and_are_bound() {
        let t = encode(ORG, 2, 3);
        assert!(!t.contains(ORG), "opaque");
        assert_eq!(decode(&t, ORG, 2), Ok(3));
        assert!(decode(&t, "0123456789abcdef01234567", 2)
            .unwrap_err()
            .contains("org_id"));
        assert!(decode(&t, ORG, 3).unwrap_err().contains("page_size"));
        for bad in [
            "",
            "!!",
            "djF8",
            &encode(ORG, 2, 1),
            &URL_SAFE_NO_PAD.encode("v2|x|2|3"),
        ] {
            assert!(
                decode(bad, ORG, 2).unwrap_err().contains("not a token"),
                "{bad}"
            );
        }
    }
}
