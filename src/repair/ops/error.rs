//! Why a step cannot be applied to a document: [`StepError`] (which step, which field) around
//! an [`OpError`] (what went wrong). Neither carries a value of the document.

/// A step that cannot be applied to a document. Names the step and the field, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("step {step} ({op}){}: {message}", if field.is_empty() { String::new() } else { format!(", field `{field}`") })]
pub struct StepError {
    /// 1-based step number.
    pub step: usize,
    pub op: &'static str,
    /// The field concerned ("" when none).
    pub field: String,
    /// What went wrong.
    pub message: OpError,
}

/// What went wrong in one op, without the step and field (see [`StepError`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// An argument is still a parameter reference: the template was not bound.
    #[error("parameter `{0}` is not bound")]
    Unbound(String),
    #[error("the document has no baseline version to restore")]
    NoBaseline,
    #[error("cannot remove the field (inside an array)")]
    InsideArray,
    /// The field holds a value of this kind where a string is needed.
    #[error("a {kind} cannot be {verb} (not a string)")]
    NotAString {
        kind: &'static str,
        verb: &'static str,
    },
    #[error("the text has {parts} part(s), fewer than the {fields} fields of `into`")]
    TooFewParts { parts: usize, fields: usize },
    /// The field holds a value of this kind where a sub-document is needed.
    #[error("is a {0}, not a document")]
    NotADocument(&'static str),
    #[error("already exists in the target sub-document")]
    ExistsInTarget,
    #[error("already exists next to the sub-document")]
    ExistsNextTo,
    /// A path to write goes through an array that has no element of that index.
    #[error("`{0}` is an array without that element")]
    NoSuchElement(String),
    /// A path to write goes through a value that is not a document.
    #[error("`{path}` is a {kind}, not a document")]
    ParentNotADocument { path: String, kind: &'static str },
    /// A value cannot be converted, scaled, computed or joined.
    #[error("{0}")]
    Value(String),
}

#[cfg(test)]
impl OpError {
    /// Whether the message contains `s`.
    pub fn contains(&self, s: &str) -> bool {
        self.to_string().contains(s)
    }
}

/// A failed op: the field concerned ("" when none) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) field: String,
    pub(crate) error: OpError,
}

impl Failure {
    pub(crate) fn at(field: &str, error: OpError) -> Failure {
        Failure {
            field: field.to_string(),
            error,
        }
    }
}

/// Maps an error of the path helpers to a failure at `field`.
pub(crate) fn path_err(field: &str) -> impl Fn(OpError) -> Failure + '_ {
    move |e| Failure::at(field, e)
}

/// Maps a string error of the value helpers to a failure at `field`.
pub(crate) fn value_err(field: &str) -> impl Fn(String) -> Failure + '_ {
    move |m| Failure::at(field, OpError::Value(m))
}
