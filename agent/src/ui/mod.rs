//! The web UI (`/ui/`): three static files built into the binary and served by the
//! HTTP listener, plus the aggregate the service list reads ([`summary`]).
//!
//! No build step and no framework: `agent/ui/` holds one HTML page, one CSS sheet and one
//! JavaScript module, included with `include_str!`, so the UI works from a clean clone and
//! costs the binary about 30 KB. The page routes on the client (`/ui/dc1/services/web`
//! and the like all answer `index.html`) and reads Consul's HTTP API with blocking
//! queries, so it updates live and works against any agent of the cluster.

pub mod summary;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::config::UiConfig;

const INDEX: &str = include_str!("../../ui/index.html");
const APP_JS: &str = include_str!("../../ui/app.js");
const APP_CSS: &str = include_str!("../../ui/app.css");

/// One file as served: its bytes, type and validator.
#[derive(Clone)]
struct Asset {
    body: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: impl Into<Bytes>, content_type: &'static str) -> Asset {
        let body = body.into();
        let digest = ring::digest::digest(&ring::digest::SHA256, &body);
        let hex: String = digest.as_ref()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Asset {
            body,
            content_type,
            etag: HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header"),
        }
    }

    /// The file, or a 304 when the browser's copy is current. Asset names carry no
    /// hash, so browsers revalidate every time (`no-cache`): a cheap 304 after an upgrade
    /// is better than a stale script.
    fn serve(&self, request: &HeaderMap) -> Response {
        let headers = [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, self.etag.clone()),
        ];
        let current = request
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tags| tags.as_bytes() == self.etag.as_bytes());
        if current {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        let content_type = (
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        (StatusCode::OK, headers, [content_type], self.body.clone()).into_response()
    }
}

/// The UI's routes under `config.content_path`, and `/` redirecting there as Consul's;
/// none when the UI is off, so every UI path is the API's 404.
pub fn routes<S: Clone + Send + Sync + 'static>(config: &UiConfig) -> Router<S> {
    if !config.enabled {
        return Router::new();
    }
    let path = config.content_path.clone();
    // The page's `<base>` makes its relative asset and link URLs work under any path.
    let index = Asset::new(
        INDEX.replace("{{CONTENT_PATH}}", &path),
        "text/html; charset=utf-8",
    );
    let js = Asset::new(APP_JS, "text/javascript; charset=utf-8");
    let css = Asset::new(APP_CSS, "text/css; charset=utf-8");
    let page = move |headers: HeaderMap| {
        let index = index.clone();
        async move { index.serve(&headers) }
    };
    let bare = path.trim_end_matches('/').to_owned();
    let location = HeaderValue::from_str(&path).map_err(|_| ()).ok();
    // Consul answers 301 to its UI.
    let redirect = move || {
        let location = location.clone();
        async move {
            match location {
                Some(to) => {
                    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, to)]).into_response()
                }
                None => StatusCode::NOT_FOUND.into_response(),
            }
        }
    };
    Router::new()
        .route("/", get(redirect.clone()))
        .route(&bare, get(redirect))
        .route(&path, get(page.clone()))
        .route(&format!("{path}{{*rest}}"), get(page))
        .route(
            &format!("{path}assets/{{*rest}}"),
            get(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") }),
        )
        .route(
            &format!("{path}assets/app.js"),
            get(move |headers: HeaderMap| {
                let js = js.clone();
                async move { js.serve(&headers) }
            }),
        )
        .route(
            &format!("{path}assets/app.css"),
            get(move |headers: HeaderMap| {
                let css = css.clone();
                async move { css.serve(&headers) }
            }),
        )
}

/// The UI's first load: the page and both assets, in bytes (what a browser fetches
/// before the first API call).
pub fn first_load_bytes() -> usize {
    INDEX.len() + APP_JS.len() + APP_CSS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_load_stays_far_under_200_kb_even_uncompressed() {
        assert!(first_load_bytes() < 100 * 1024, "{}", first_load_bytes());
    }

    #[test]
    fn the_page_loads_its_assets_relative_to_its_base() {
        assert!(INDEX.contains(r#"<base href="{{CONTENT_PATH}}">"#));
        assert!(INDEX.contains(r#"href="assets/app.css""#));
        assert!(INDEX.contains(r#"src="assets/app.js""#));
    }
}
