//! What a scan is narrowed to, in the MongoDB Database Tools' terms: `--query` (an
//! Extended JSON filter a live source applies on the server) and `--nsInclude` /
//! `--nsExclude` (namespace patterns `db.collection` with `*` wildcards).

use bson::Document;

/// `--query`: a filter for one collection of a live source.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The collection it applies to (mongodump's rule: `--query` needs one collection).
    pub collection: String,
    /// The filter, as the server gets it.
    pub filter: Document,
    /// The filter as relaxed Extended JSON, for reports.
    pub shown: serde_json::Value,
}

impl Query {
    /// Parses `text`, a JSON object in relaxed or canonical Extended JSON (`{"status":
    /// "open", "created_at": {"$gte": {"$date": "2026-01-01T00:00:00Z"}}}`); query
    /// operators (`$gte`, `$in`, …) are kept as they are.
    pub fn parse(collection: &str, text: &str) -> Result<Query, String> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("--query: not JSON ({e})"))?;
        if !json.is_object() {
            return Err(
                "--query: not a JSON object (a filter such as {\"status\": \"open\"})".into(),
            );
        }
        let decoded = crate::value::from_ejson(json)
            .map_err(|e| format!("--query: not valid Extended JSON: {e}"))?;
        let bytes = crate::value::to_bson(&decoded.value)
            .map_err(|e| format!("--query: not valid Extended JSON: {e}"))?;
        let raw = bson::RawDocument::from_bytes(&bytes).map_err(|e| format!("--query: {e}"))?;
        let filter = Document::try_from(raw).map_err(|e| format!("--query: {e}"))?;
        Ok(Query {
            collection: collection.to_string(),
            filter,
            shown: decoded.value,
        })
    }
}

/// `--nsInclude` / `--nsExclude`: which collections a command takes, by namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsFilter {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl NsFilter {
    /// Checks the patterns: `DB.COLLECTION`, `*` for any run of characters (dots
    /// included), `\*` and `\\` for a literal `*` and `\`.
    pub fn new(include: &[String], exclude: &[String]) -> Result<NsFilter, String> {
        for (flag, list) in [("--nsInclude", include), ("--nsExclude", exclude)] {
            for p in list {
                if !p.contains('.') || p.starts_with('.') {
                    return Err(format!(
                        "{flag} {p:?}: a namespace pattern is DB.COLLECTION (e.g. shop.orders, shop.*, *.orders)"
                    ));
                }
                if p.ends_with('\\') && !p.ends_with("\\\\") {
                    return Err(format!("{flag} {p:?}: ends with a lone \\"));
                }
            }
        }
        Ok(NsFilter {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    /// Whether `db.coll` is taken: matched by an include pattern (any, when there is
    /// none) and by no exclude pattern. A source that names no database (an export)
    /// matches the database part as `*` would.
    pub fn takes(&self, db: Option<&str>, coll: &str) -> bool {
        let m = |p: &String| match db {
            Some(db) => glob(p, &format!("{db}.{coll}")),
            None => {
                // The database part is unknown: try every split of the pattern at a dot.
                let chars: Vec<char> = p.chars().collect();
                (0..chars.len()).any(|i| {
                    chars[i] == '.'
                        && (i == 0 || chars[i - 1] != '\\')
                        && glob(&chars[i + 1..].iter().collect::<String>(), coll)
                })
            }
        };
        (self.include.is_empty() || self.include.iter().any(m)) && !self.exclude.iter().any(m)
    }
}

/// Whether `text` matches `pattern` (`*` any run of characters, `\` escapes the next).
pub fn glob(pattern: &str, text: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Tok {
        Star,
        Char(char),
    }
    let mut toks = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        toks.push(match c {
            '*' => Tok::Star,
            '\\' => Tok::Char(it.next().unwrap_or('\\')),
            c => Tok::Char(c),
        });
    }
    let text: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last star.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match toks.get(p) {
            Some(Tok::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Tok::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    toks[p..].iter().all(|t| *t == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_patterns_match_as_the_database_tools_do() {
        assert!(glob("shop.orders", "shop.orders"));
        assert!(!glob("shop.orders", "shop.orders2"));
        assert!(glob("shop.*", "shop.orders"));
        assert!(glob("*.orders", "shop.orders"));
        assert!(glob("sh*.ord*s", "shop.orders"));
        assert!(glob("*", "a.b.c"));
        assert!(!glob("shop.*", "shopx.orders"));
        assert!(glob("shop.a\\*b", "shop.a*b"));
        assert!(!glob("shop.a\\*b", "shop.axxb"));
        let f = NsFilter::new(&["shop.*".into()], &["shop.audit*".into()]).unwrap();
        assert!(f.takes(Some("shop"), "orders"));
        assert!(!f.takes(Some("shop"), "audit_log"));
        assert!(!f.takes(Some("other"), "orders"));
        // An export names no database: only the collection part is matched.
        assert!(f.takes(None, "orders"));
        assert!(!f.takes(None, "audit_log"));
        assert!(NsFilter::new(&["orders".into()], &[]).is_err());
        assert!(NsFilter::new(&[], &[".orders".into()]).is_err());
        assert!(NsFilter::default().takes(Some("x"), "y"));
    }

    #[test]
    fn a_query_is_extended_json_with_operators_kept() {
        let q = Query::parse(
            "orders",
            r#"{"status": {"$in": ["open", "paid"]}, "total": {"$gte": {"$numberInt": "10"}},
                "created_at": {"$lt": {"$date": "2026-01-01T00:00:00Z"}}}"#,
        )
        .unwrap();
        let f = &q.filter;
        assert_eq!(
            f.get_document("status")
                .unwrap()
                .get_array("$in")
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            f.get_document("total").unwrap().get_i32("$gte").unwrap(),
            10
        );
        assert!(f
            .get_document("created_at")
            .unwrap()
            .get_datetime("$lt")
            .is_ok());
        assert!(Query::parse("orders", "[1]").is_err());
        assert!(Query::parse("orders", "{").is_err());
        // What the Extended JSON specification calls an error is one here too.
        assert!(Query::parse("orders", r#"{"a": {"$oid": "nothex"}}"#).is_err());
    }
}
