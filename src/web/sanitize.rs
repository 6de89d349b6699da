//! Cleaning a message's HTML before any browser sees it (ammonia, an
//! allow-list sanitiser on html5ever). What survives: ordinary formatting
//! tags and attributes, links to http/https/mailto (opened in a new tab,
//! `rel="noopener noreferrer"`), inline styles limited to an allow-list of
//! harmless properties, and images that are either inline parts of the same
//! message (`cid:`, turned into `data:` URLs) or — only when the reader asked
//! — remote. Script, event handlers, forms, `<base>`, `<meta>`, `<style>`
//! blocks, SVG/MathML, frames and relative URLs never survive. The result is
//! shown in a sandboxed iframe under a CSP without script (`message.rs`), so
//! a sanitiser miss still cannot run code or load anything remote.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Inline images (`cid:`) as `data:` URLs, keyed by Content-ID without `<>`.
pub type InlineImages = HashMap<String, String>;

/// Image types an inline part may have to be shown (never SVG: it can script).
pub const INLINE_IMAGE_TYPES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
];

/// CSS properties a `style` attribute may keep.
const STYLE_PROPERTIES: [&str; 44] = [
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "font-variant",
    "line-height",
    "letter-spacing",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "white-space",
    "word-spacing",
    "vertical-align",
    "direction",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-radius",
    "border-collapse",
    "border-spacing",
    "width",
    "max-width",
    "height",
    "display",
    "list-style-type",
];

/// Presentational attributes old HTML mail relies on.
const GENERIC_ATTRIBUTES: [&str; 12] = [
    "style",
    "align",
    "valign",
    "bgcolor",
    "color",
    "width",
    "height",
    "border",
    "cellpadding",
    "cellspacing",
    "face",
    "size",
];

/// The cleaned body and what was held back.
pub struct Sanitised {
    pub html: String,
    /// Remote images removed because the reader has not asked for them.
    pub blocked_images: usize,
}

/// Cleans `html`. `inline` maps Content-IDs to `data:` URLs; `load_remote`
/// keeps http(s) image sources (the reader clicked "load images").
pub fn sanitize_html(html: &str, inline: &InlineImages, load_remote: bool) -> Sanitised {
    let blocked = Arc::new(AtomicUsize::new(0));
    let counter = blocked.clone();
    let inline = inline.clone();
    let mut builder = ammonia::Builder::default();
    builder
        .url_schemes(["http", "https", "mailto", "cid"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true)
        .add_generic_attributes(GENERIC_ATTRIBUTES)
        .filter_style_properties(STYLE_PROPERTIES.into_iter().collect())
        .add_tag_attributes("img", ["src", "alt", "title", "width", "height"])
        .id_prefix(Some("m-"))
        .attribute_filter(
            move |element, attribute, value| match (element, attribute) {
                ("img", "src") => {
                    let lower = value.trim().to_ascii_lowercase();
                    if let Some(cid) = lower.strip_prefix("cid:") {
                        let cid = cid.trim_matches(|c| c == '<' || c == '>');
                        return inline.get(cid).map(|d| d.clone().into());
                    }
                    if load_remote && (lower.starts_with("https:") || lower.starts_with("http:")) {
                        return Some(value.into());
                    }
                    counter.fetch_add(1, Ordering::Relaxed);
                    None
                }
                (_, "href") if value.trim().to_ascii_lowercase().starts_with("cid:") => None,
                (_, "style") if !harmless_style(value) => None,
                _ => Some(value.into()),
            },
        );
    let html = builder.clean(html).to_string();
    Sanitised {
        html,
        blocked_images: blocked.load(Ordering::Relaxed),
    }
}

/// Inline CSS without anything that could fetch or compute: no escapes,
/// no `url(`, no `expression(`, no `@import`, no bindings.
fn harmless_style(value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    ![
        "\\",
        "url",
        "expression",
        "import",
        "behavior",
        "binding",
        "javascript",
        "image-set",
        "&#",
    ]
    .iter()
    .any(|bad| v.contains(bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(html: &str) -> String {
        sanitize_html(html, &InlineImages::new(), false).html
    }

    #[test]
    fn removes_everything_active() {
        let hostile = r#"<script>alert(1)</script><img src=x onerror=alert(2)>
            <a href="javascript:alert(3)">x</a><svg><script>alert(4)</script></svg>
            <math><mtext><table><mglyph><style><img src=x onerror=alert(5)></style></mglyph></table></mtext></math>
            <div style="background:url(http://evil.test/a.png)">bg</div>
            <div style="width: expression(alert(6))">ex</div>
            <meta http-equiv="refresh" content="0;url=http://evil.test/"><base href="http://evil.test/">
            <form action="http://evil.test/"><input name=p></form><iframe src="http://evil.test/"></iframe>
            <style>body{background:url(http://evil.test/s.png)}</style><link rel=stylesheet href="http://evil.test/c.css">
            <object data="http://evil.test/o"></object><embed src="http://evil.test/e">
            <a href="/logout">rel</a><p onclick="alert(7)" style="color:red">ok</p>"#;
        let out = clean(hostile);
        for bad in [
            "<script",
            "onerror",
            "javascript:",
            "<svg",
            "<math",
            "url(",
            "expression",
            "<meta",
            "<base",
            "<form",
            "<input",
            "<iframe",
            "<style",
            "<link",
            "<object",
            "<embed",
            "onclick",
            "evil.test",
            "/logout",
        ] {
            assert!(
                !out.to_ascii_lowercase().contains(bad),
                "{bad} survived: {out}"
            );
        }
        assert!(
            out.contains("color:red") || out.contains("color: red"),
            "{out}"
        );
        assert!(out.contains(">ok</p>"));
    }

    #[test]
    fn remote_images_are_blocked_unless_asked_and_cid_becomes_data() {
        let html = r#"<img src="https://img.test/a.png"><img src="cid:logo@x"><a href="https://ok.test/">l</a>"#;
        let mut inline = InlineImages::new();
        inline.insert("logo@x".into(), "data:image/png;base64,AAAA".into());
        let s = sanitize_html(html, &inline, false);
        assert_eq!(s.blocked_images, 1);
        assert!(!s.html.contains("img.test"));
        assert!(
            s.html.contains(r#"src="data:image/png;base64,AAAA""#),
            "{}",
            s.html
        );
        assert!(s.html.contains(r#"rel="noopener noreferrer""#));
        let s = sanitize_html(html, &inline, true);
        assert_eq!(s.blocked_images, 0);
        assert!(s.html.contains("https://img.test/a.png"));
    }
}
