//! Contracts: `schemas/<collection>/contract.toml` plus its versioned JSON Schemas,
//! loaded, checked and compiled once before any document is read.

pub mod diff;
mod index;
pub mod infer;
pub mod pull;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::value::raw::RawBson;

pub use index::{IndexKey, IndexSpec, KeyDirection};

/// Everything that can be wrong with a contract. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid TOML: {message}")]
    Toml { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: schema file for version {version} is not valid JSON: {message}")]
    SchemaJson {
        path: PathBuf,
        version: u32,
        message: String,
    },
    #[error("{path}: schema for version {version} is not a valid JSON Schema (draft 2020-12): {message} (at {location})")]
    SchemaInvalid {
        path: PathBuf,
        version: u32,
        message: String,
        location: String,
    },
    #[error("{path}: schema for version {version} cannot be compiled: {message}")]
    SchemaCompile {
        path: PathBuf,
        version: u32,
        message: String,
    },
    #[error("schemas directory {path}: {message}")]
    Directory { path: PathBuf, message: String },
}

/// A reference from a field of this collection to another collection's field (by default `_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub field: String,
    pub collection: String,
    pub to: String,
}

/// One version of a collection's contract, with its compiled schema.
pub struct Version {
    pub version: u32,
    pub schema_path: PathBuf,
    pub validator: jsonschema::Validator,
    /// The same schema compiled for in-place validation of BSON documents that passed
    /// [`crate::value::raw::preflight`].
    pub raw_validator: jsonschema::Validator<RawBson>,
    pub indexes: Vec<IndexSpec>,
    pub references: Vec<Reference>,
}

impl std::fmt::Debug for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Version")
            .field("version", &self.version)
            .field("schema_path", &self.schema_path)
            .field("indexes", &self.indexes)
            .field("references", &self.references)
            .finish_non_exhaustive()
    }
}

/// A collection's contract: the ordered versions and the target version.
#[derive(Debug)]
pub struct Contract {
    pub collection: String,
    pub path: PathBuf,
    pub target: u32,
    /// Sorted by version number.
    pub versions: Vec<Version>,
    /// Index of the target in `versions`, kept in step with `target`.
    target_idx: usize,
}

impl Contract {
    pub fn version(&self, v: u32) -> Option<&Version> {
        self.versions.iter().find(|x| x.version == v)
    }

    pub fn target_version(&self) -> &Version {
        &self.versions[self.target_idx]
    }

    /// Changes the target version (from `--target` or `docsweep.toml`).
    pub fn set_target(&mut self, target: u32) -> Result<(), ContractError> {
        let Some(idx) = self.versions.iter().position(|v| v.version == target) else {
            return Err(ContractError::Invalid {
                path: self.path.clone(),
                message: format!(
                    "target version {target} is not declared (declared: {})",
                    self.declared()
                ),
            });
        };
        self.target = target;
        self.target_idx = idx;
        Ok(())
    }

    fn declared(&self) -> String {
        let v: Vec<String> = self
            .versions
            .iter()
            .map(|v| v.version.to_string())
            .collect();
        v.join(", ")
    }

    /// Every unique index of the target version (checked on the data even when the
    /// index itself is missing).
    pub fn unique_indexes(&self) -> impl Iterator<Item = &IndexSpec> {
        self.target_version().indexes.iter().filter(|i| i.unique)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContractFile {
    collection: String,
    target: u32,
    versions: Vec<VersionFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFile {
    version: u32,
    schema: String,
    #[serde(default)]
    indexes: Vec<toml::Value>,
    #[serde(default)]
    references: Vec<ReferenceFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReferenceFile {
    field: String,
    collection: String,
    to: Option<String>,
}

/// Loads one `contract.toml` and compiles its schemas.
pub fn load(path: &Path) -> Result<Contract, ContractError> {
    let text = std::fs::read_to_string(path).map_err(|source| ContractError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file: ContractFile = toml::from_str(&text).map_err(|e| ContractError::Toml {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let invalid = |message: String| ContractError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    if file.collection.is_empty()
        || file.collection.contains('\0')
        || file.collection.starts_with("system.")
    {
        return Err(invalid(format!(
            "invalid collection name {:?}",
            file.collection
        )));
    }
    if file.versions.is_empty() {
        return Err(invalid("no [[versions]] declared".into()));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut versions = Vec::with_capacity(file.versions.len());
    for vf in file.versions {
        if versions.iter().any(|v: &Version| v.version == vf.version) {
            return Err(invalid(format!("version {} is declared twice", vf.version)));
        }
        let schema_path = dir.join(&vf.schema);
        let (validator, raw_validator) = compile_schema(&schema_path, vf.version)?;
        let mut indexes = Vec::with_capacity(vf.indexes.len());
        for (i, raw) in vf.indexes.iter().enumerate() {
            let spec = IndexSpec::from_toml(raw)
                .map_err(|m| invalid(format!("version {}: index #{}: {m}", vf.version, i + 1)))?;
            if indexes.iter().any(|x: &IndexSpec| x.key == spec.key) {
                return Err(invalid(format!(
                    "version {}: index {} is declared twice",
                    vf.version, spec.key
                )));
            }
            indexes.push(spec);
        }
        let mut references = Vec::with_capacity(vf.references.len());
        for r in vf.references {
            if r.field.is_empty() || r.collection.is_empty() {
                return Err(invalid(format!(
                    "version {}: a reference needs a non-empty `field` and `collection`",
                    vf.version
                )));
            }
            references.push(Reference {
                field: r.field,
                collection: r.collection,
                to: r.to.unwrap_or_else(|| "_id".to_string()),
            });
        }
        versions.push(Version {
            version: vf.version,
            schema_path,
            validator,
            raw_validator,
            indexes,
            references,
        });
    }
    versions.sort_by_key(|v| v.version);
    let mut contract = Contract {
        collection: file.collection,
        path: path.to_path_buf(),
        target: file.target,
        versions,
        target_idx: 0,
    };
    contract.set_target(file.target)?;
    Ok(contract)
}

/// Reads, meta-validates (draft 2020-12) and compiles one schema file: for `serde_json` values
/// and for in-place BSON.
fn compile_schema(
    path: &Path,
    version: u32,
) -> Result<(jsonschema::Validator, jsonschema::Validator<RawBson>), ContractError> {
    let text = std::fs::read_to_string(path).map_err(|source| ContractError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let schema: Value = serde_json::from_str(&text).map_err(|e| ContractError::SchemaJson {
        path: path.to_path_buf(),
        version,
        message: e.to_string(),
    })?;
    if let Some(declared) = schema.get("$schema").and_then(Value::as_str) {
        let known = declared.trim_end_matches('#');
        if known != "https://json-schema.org/draft/2020-12/schema" {
            return Err(ContractError::SchemaInvalid {
                path: path.to_path_buf(),
                version,
                message: format!("`$schema` is {declared:?}; contracts use draft 2020-12"),
                location: "/$schema".into(),
            });
        }
    }
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        return Err(ContractError::SchemaInvalid {
            path: path.to_path_buf(),
            version,
            message: e.to_string(),
            location: display_pointer(e.instance_path().as_str()),
        });
    }
    let compile_error = |e: jsonschema::ValidationError<'_>| ContractError::SchemaCompile {
        path: path.to_path_buf(),
        version,
        message: e.to_string(),
    };
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(compile_error)?;
    let raw = raw_validator(&schema).map_err(compile_error)?;
    Ok((validator, raw))
}

/// `schema` compiled for in-place BSON with the options of the `serde_json` validator.
pub fn raw_validator(
    schema: &Value,
) -> Result<jsonschema::Validator<RawBson>, jsonschema::ValidationError<'static>> {
    jsonschema::options_for::<RawBson>()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
}

fn display_pointer(p: &str) -> String {
    if p.is_empty() {
        "/".into()
    } else {
        p.into()
    }
}

/// All contracts of a schemas directory, keyed by collection name.
#[derive(Debug, Default)]
pub struct ContractSet {
    pub contracts: BTreeMap<String, Contract>,
}

impl ContractSet {
    /// Loads every `<dir>/<collection>/contract.toml`.
    pub fn load_dir(dir: &Path) -> Result<Self, ContractError> {
        let entries = std::fs::read_dir(dir).map_err(|e| ContractError::Directory {
            path: dir.to_path_buf(),
            message: format!("cannot read: {e}"),
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ContractError::Directory {
                path: dir.to_path_buf(),
                message: format!("cannot read: {e}"),
            })?;
            let p = entry.path().join("contract.toml");
            if p.is_file() {
                paths.push(p);
            }
        }
        paths.sort();
        if paths.is_empty() {
            return Err(ContractError::Directory {
                path: dir.to_path_buf(),
                message: "no <collection>/contract.toml found".into(),
            });
        }
        let mut set = ContractSet::default();
        for p in paths {
            let c = load(&p)?;
            if let Some(prev) = set.contracts.get(&c.collection) {
                return Err(ContractError::Invalid {
                    path: p.clone(),
                    message: format!(
                        "collection {:?} already has a contract in {}",
                        c.collection,
                        prev.path.display()
                    ),
                });
            }
            set.contracts.insert(c.collection.clone(), c);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests;
