//! `/openapi.json` and a docs page rendered from it, with no JavaScript or
//! CDN (the page works on a closed network).

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The HTML page for an OpenAPI document.
pub fn render(spec: &Value) -> String {
    let title = spec["info"]["title"].as_str().unwrap_or("API");
    let mut html = format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{t}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}\
         .op{{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}}\
         .m{{font-weight:bold;text-transform:uppercase;margin-right:.5rem}}pre{{background:#f6f6f6;padding:.5rem;overflow:auto}}\
         </style></head><body><h1>{t}</h1><p>{d}</p><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>. \
         Every endpoint but /health, /ready, /openapi.json and /docs needs <code>Authorization: Bearer &lt;token&gt;</code> \
         (<code>evilent token --sub ID</code>). Errors are <code>application/problem+json</code>.</p>",
        t = escape(title),
        d = escape(spec["info"]["description"].as_str().unwrap_or(""))
    );
    if let Some(paths) = spec["paths"].as_object() {
        for (path, ops) in paths {
            for (method, op) in ops.as_object().into_iter().flatten() {
                html.push_str(&format!(
                    "<div class=op><p><span class=m>{}</span><code>{}</code> — {}</p>",
                    escape(method),
                    escape(path),
                    escape(op["summary"].as_str().unwrap_or(""))
                ));
                if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
                    html.push_str(&format!(
                        "<p>Body:</p><pre>{}</pre>",
                        escape(&serde_json::to_string_pretty(body).unwrap_or_default())
                    ));
                }
                if let Some(responses) = op["responses"].as_object() {
                    html.push_str("<p>Responses: ");
                    for (code, r) in responses {
                        html.push_str(&format!(
                            "<code>{}</code> {}; ",
                            escape(code),
                            escape(r["description"].as_str().unwrap_or(""))
                        ));
                    }
                    html.push_str("</p>");
                }
                html.push_str("</div>");
            }
        }
    }
    html.push_str("</body></html>");
    html
}

/// `GET /openapi.json` and `GET /docs` for `spec`.
pub fn router<S: Clone + Send + Sync + 'static>(spec: Value) -> Router<S> {
    let page = render(&spec);
    Router::new()
        .route("/openapi.json", get(move || async move { Json(spec) }))
        .route("/docs", get(move || async move { Html(page) }))
}
