//! The first line of a plan file: what the plan was made from (template chain and
//! parameters, or the report for a plan over several collections), the source, and the
//! target version(s). The fields are written in this struct's order; optional ones only
//! when set, as plans have always been written, so a header reads back byte for byte.
//! Fields this version does not know are ignored on reading.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One template of the chain and the parameters it was bound with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateParams {
    pub template: String,
    #[serde(default)]
    pub params: Map<String, Value>,
}

/// A plan's header (`kind: "plan"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanHeader {
    /// Always `plan`.
    pub kind: String,
    /// [`super::FORMAT`], or the earlier unchained format when read.
    pub format: String,
    /// The template chain's names joined with `+`, or `from-report`.
    #[serde(default)]
    pub template: String,
    /// The chain's template names (a plan over one collection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<String>>,
    /// Each template's parameters (a plan over one collection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<TemplateParams>>,
    /// The selection the first template's was overridden with, or its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    /// The collection of a plan over one collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    /// The report directory of a plan over several collections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_report: Option<String>,
    /// Per remediation of a plan over several collections: its finding, collection,
    /// templates, stage, entries, and why it was refused if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<Value>>,
    /// The collections of a plan over several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collections: Option<Vec<String>>,
    /// The target version per collection of a plan over several (in plan order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_versions: Option<Map<String, Value>>,
    /// The source, redacted (`dump:…`, `archive:…`, `mongodb://…`).
    #[serde(default)]
    pub source: String,
    /// The database, when the source knows it (`null` when not).
    #[serde(default)]
    pub database: Option<String>,
    /// The target version of a plan over one collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_version: Option<u32>,
    #[serde(default)]
    pub created_at: String,
    /// Documents left alone because they equal their baseline image (when any were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_as_baseline: Option<u64>,
}

impl PlanHeader {
    /// A header with the given format and nothing else set.
    pub fn new(format: &str) -> PlanHeader {
        PlanHeader {
            kind: "plan".into(),
            format: format.into(),
            template: String::new(),
            templates: None,
            params: None,
            select: None,
            collection: None,
            from_report: None,
            parts: None,
            collections: None,
            target_versions: None,
            source: String::new(),
            database: None,
            target_version: None,
            created_at: String::new(),
            kept_as_baseline: None,
        }
    }

    /// The header as the JSON the plan file holds.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The header of the plan restricted to `coll` (its collection, and its target version
    /// from `target_versions` when the plan is over several).
    pub fn of_collection(&self, coll: &str) -> PlanHeader {
        let mut header = self.clone();
        header.collection = Some(coll.to_string());
        if let Some(v) = self.target_versions.as_ref().and_then(|t| t.get(coll)) {
            header.target_version = v.as_u64().and_then(|v| u32::try_from(v).ok());
        }
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn headers_of_both_kinds_read_and_write_back_byte_for_byte() {
        let one = r#"{"kind":"plan","format":"docsweep-plan/2","template":"a+b","templates":["a","b"],"params":[{"template":"a","params":{"x":1.5,"y":"z"}},{"template":"b","params":{}}],"select":"invalid","collection":"orders","source":"dump:/d","database":"shop","target_version":2,"created_at":"2024-01-01T00:00:00Z","kept_as_baseline":3}"#;
        let several = r#"{"kind":"plan","format":"docsweep-plan/2","template":"from-report","from_report":"rep","parts":[{"finding":"f","collection":"c","template":"t","stage":"s","entries":1}],"collections":["c","b"],"target_versions":{"c":2,"b":1},"source":"mongodb://h/","database":null,"created_at":"t"}"#;
        for text in [one, several] {
            let v: Value = serde_json::from_str(text).unwrap();
            let h: PlanHeader = serde_json::from_value(v).unwrap();
            assert_eq!(h.to_json().to_string(), text);
        }
    }

    #[test]
    fn unknown_fields_are_ignored_and_a_collection_part_takes_its_target_version() {
        let v = json!({"kind": "plan", "format": "docsweep-plan/2", "future": [1],
            "target_versions": {"c": 4}});
        let h: PlanHeader = serde_json::from_value(v).unwrap();
        let part = h.of_collection("c");
        assert_eq!(part.collection.as_deref(), Some("c"));
        assert_eq!(part.target_version, Some(4));
        assert!(!h.to_json().to_string().contains("future"));
    }
}
