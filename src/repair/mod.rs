//! Repairs: templates (named, parameterised recipes), the operations they are made of, and
//! (next to these) planning, applying and journaling them.

pub mod apply;
mod error;
pub mod from_report;
mod image;
pub mod journal;
pub mod live;
pub mod matcher;
pub mod ops;
mod overlay;
pub mod plan;
pub mod remediation;
pub mod settle;
pub mod template;

pub use ops::{
    Arg, CollectionAction, Expr, Outcome, QuarantineTarget, Rounding, Step, StepError, TypeName,
};
pub use template::{
    Bound, Library, Param, ParamType, Selection, Template, TemplateConfig, TemplateError,
};
