//! Formatting shared by the renderers: numbers with thousands separators, index labels,
//! the status as a word, and one escape function per output syntax (HTML, XML, the
//! Prometheus exposition format).

use serde_json::Value;

use super::Status;

/// Formats `n` with thousands separators.
pub fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `{ status: 1, created_at: -1 } unique (name)` for an index entry of report.json.
pub fn index_label(ix: &Value) -> String {
    let fields: Vec<String> = match ix.get("key").and_then(Value::as_object) {
        Some(m) => m.iter().map(|(f, d)| format!("{f}: {d}")).collect(),
        None => return ix.to_string(),
    };
    let mut s = format!("{{ {} }}", fields.join(", "));
    for flag in ["unique", "sparse"] {
        if ix.get(flag) == Some(&Value::Bool(true)) {
            s.push(' ');
            s.push_str(flag);
        }
    }
    if let Some(n) = ix.get("name").and_then(Value::as_str) {
        s.push_str(&format!(" ({n})"));
    }
    s
}

/// The status as report.json writes it: `clean`, `warn`, `findings` or `failed`.
pub fn status_word(s: Status) -> &'static str {
    match s {
        Status::Clean => "clean",
        Status::Warn => "warn",
        Status::Findings => "findings",
        Status::Failed => "failed",
    }
}

/// Escapes text for HTML element content and (double- or single-quoted) attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // C0 controls other than tab/newline/CR are not allowed in HTML text
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            '\u{7F}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for XML content and double-quoted attributes; drops characters XML 1.0
/// cannot carry at all (most C0 controls, U+FFFE/U+FFFF).
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // in attributes, keep newlines/tabs as such instead of letting them normalise
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a Prometheus label value (`\\`, `\"`, `\n`).
pub fn prometheus_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a Prometheus `# HELP` text: only backslash and newline.
pub fn prometheus_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as the Prometheus exposition format writes it.
pub fn prometheus_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands() {
        for (n, s) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (60300, "60,300"),
            (1234567, "1,234,567"),
        ] {
            assert_eq!(num(n), s);
        }
    }

    #[test]
    fn index_labels() {
        let ix = serde_json::json!({"key": {"a": 1, "b": -1}, "unique": true, "name": "a_b"});
        assert_eq!(index_label(&ix), "{ a: 1, b: -1 } unique (a_b)");
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            html(r#"<a href='x'>&"</a>"#),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(html("a\u{0}b"), "a\u{FFFD}b");
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(
            xml("a<b>&\"'\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;&#10;\u{FFFD}"
        );
    }

    #[test]
    fn escapes_prometheus_labels() {
        assert_eq!(prometheus_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }
}
