//! Which documents a template works on: the finding classes of a report.

use std::fmt;

use super::param_ref;
use crate::repair::ops::check_path;

/// Which documents a template works on (the finding classes of a report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Valid,
    Invalid,
    OtherVersion(u32),
    /// `orphan:<field>`: documents whose reference `field` points nowhere.
    Orphan(String),
    /// `duplicate:<fields>` (comma-separated): members of a duplicate group on a unique key.
    Duplicate(String),
    /// Documents of the baseline that are missing now.
    Missing,
    /// Documents that differ from the baseline.
    Changed,
    /// Documents the baseline does not have.
    Added,
    All,
}

impl Selection {
    /// Parses `invalid`, `valid`, `other_version:N`, `orphan:<field>`, `duplicate:<fields>`,
    /// `missing`, `changed`, `added` or `all`. The argument of `orphan:`/`duplicate:` may be a
    /// parameter reference (`orphan:{{field}}`), resolved when the template is bound.
    pub fn parse(s: &str) -> Result<Selection, String> {
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let no_arg = |sel: Selection| match arg {
            None => Ok(sel),
            Some(_) => Err(format!("select {s:?}: `{kind}` takes no argument")),
        };
        match kind {
            "valid" => no_arg(Selection::Valid),
            "invalid" => no_arg(Selection::Invalid),
            "missing" => no_arg(Selection::Missing),
            "changed" => no_arg(Selection::Changed),
            "added" => no_arg(Selection::Added),
            "all" => no_arg(Selection::All),
            "other_version" => {
                let n = arg
                    .and_then(|a| a.parse::<u32>().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        format!("select {s:?}: expected other_version:N with a version number N")
                    })?;
                Ok(Selection::OtherVersion(n))
            }
            "orphan" => {
                let a = arg.unwrap_or("");
                if param_ref(a).is_none() {
                    check_path(a).map_err(|m| format!("select {s:?}: {m}"))?;
                }
                Ok(Selection::Orphan(a.to_string()))
            }
            "duplicate" => {
                let a = arg.unwrap_or("");
                if param_ref(a).is_none() {
                    for f in a.split(',') {
                        check_path(f).map_err(|m| format!("select {s:?}: {m}"))?;
                    }
                }
                Ok(Selection::Duplicate(a.to_string()))
            }
            _ => Err(format!(
                "unknown select {s:?} (expected invalid, valid, other_version:N, orphan:<field>, duplicate:<fields>, missing, changed, added or all)"
            )),
        }
    }

    pub fn as_str(&self) -> String {
        match self {
            Selection::Valid => "valid".into(),
            Selection::Invalid => "invalid".into(),
            Selection::OtherVersion(n) => format!("other_version:{n}"),
            Selection::Orphan(f) => format!("orphan:{f}"),
            Selection::Duplicate(f) => format!("duplicate:{f}"),
            Selection::Missing => "missing".into(),
            Selection::Changed => "changed".into(),
            Selection::Added => "added".into(),
            Selection::All => "all".into(),
        }
    }

    /// Whether the documents selected need a baseline.
    pub fn needs_baseline(&self) -> bool {
        matches!(
            self,
            Selection::Missing | Selection::Changed | Selection::Added
        )
    }

    pub(super) fn arg_ref(&self) -> Option<&str> {
        match self {
            Selection::Orphan(a) | Selection::Duplicate(a) => param_ref(a),
            _ => None,
        }
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}
