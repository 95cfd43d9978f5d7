//! The status page at `/`: a static shell (one HTML, one CSS, one JS file,
//! compiled into the binary) that reads everything it shows from the
//! authenticated JSON API in the browser. The shell holds no tenant data, so
//! it is public; the token stays in the browser's `sessionStorage` and travels
//! only in `Authorization` headers. See `docs/dashboard.md`.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::SharedState;

/// The page's Content-Security-Policy: only this origin's script, style and
/// API; no inline code, no framing, no forms posting anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Where the script and the style sheet are served.
pub const SCRIPT_PATH: &str = "/ui/app.js";
/// See [`SCRIPT_PATH`].
pub const STYLE_PATH: &str = "/ui/app.css";

const INDEX_HTML: &str = include_str!("../../ui/index.html");
const APP_JS: &str = include_str!("../../ui/app.js");
const APP_CSS: &str = include_str!("../../ui/app.css");

/// The page's routes, merged into the public part of the API router.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route(SCRIPT_PATH, get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route(STYLE_PATH, get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
}

/// One file of the shell with the headers every response of the page carries.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A new binary serves a new page: browsers check before reusing theirs.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_has_no_inline_code_and_links_only_its_own_files() {
        assert!(INDEX_HTML.contains(&format!("src=\"{SCRIPT_PATH}\"")));
        assert!(INDEX_HTML.contains(&format!("href=\"{STYLE_PATH}\"")));
        // Every <script> has a src; no style attribute or element; no remote URL.
        assert_eq!(INDEX_HTML.matches("<script").count(), INDEX_HTML.matches("<script src=").count());
        for banned in ["<style", " style=", "http://", "https://", "onclick", "onload", "javascript:"] {
            assert!(!INDEX_HTML.contains(banned), "index.html contains {banned:?}");
        }
    }

    #[test]
    fn the_script_never_writes_html_from_strings() {
        for banned in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            assert!(!APP_JS.contains(banned), "app.js uses {banned}");
        }
    }

    #[test]
    fn every_page_response_carries_the_security_headers() {
        let r = asset("text/html; charset=utf-8", INDEX_HTML);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';") && !CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    }
}
