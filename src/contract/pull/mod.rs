//! `docsweep contract pull`: a collection's server-side `$jsonSchema` validator, translated
//! (see [`translate`]) into a JSON Schema over relaxed Extended JSON, written with the
//! collection's indexes as a new contract version.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ContractError, IndexSpec, KeyDirection};

mod translate;
pub(crate) use translate::defs_for;
pub use translate::{
    permissive_schema, translate, translate_options, TranslateError, Translation, DRAFT_2020_12,
};

/// Where a pulled version goes: computed (and checked) before the server is read.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub collection: String,
    pub dir: PathBuf,
    pub contract_path: PathBuf,
    pub schema_path: PathBuf,
    pub version: u32,
    /// The existing contract.toml text, `None` when it is to be created.
    existing: Option<String>,
    /// The existing contract's target (the new version when created).
    pub target: u32,
}

/// What [`write`] did.
#[derive(Debug, Clone)]
pub struct Written {
    pub version: u32,
    pub schema_path: PathBuf,
    pub contract_path: PathBuf,
    /// contract.toml was created (rather than appended to).
    pub created: bool,
    /// The contract's target version after the write.
    pub target: u32,
    pub indexes: usize,
}

fn invalid(path: &Path, message: impl Into<String>) -> ContractError {
    ContractError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Decides which version to write for `collection` under `schemas_dir` (`version`, or the
/// highest existing one + 1, or 1) and refuses to overwrite an existing version or file.
pub fn prepare(
    schemas_dir: &Path,
    collection: &str,
    version: Option<u32>,
) -> Result<Prepared, ContractError> {
    if collection.is_empty()
        || collection.contains(['/', '\\', '\0'])
        || collection == "."
        || collection == ".."
        || collection.starts_with("system.")
    {
        return Err(ContractError::Directory {
            path: schemas_dir.to_path_buf(),
            message: format!("cannot hold a contract for a collection named {collection:?}"),
        });
    }
    let dir = schemas_dir.join(collection);
    let contract_path = dir.join("contract.toml");
    let (existing, declared, target) = if contract_path.exists() {
        let text = std::fs::read_to_string(&contract_path).map_err(|source| ContractError::Io {
            path: contract_path.clone(),
            source,
        })?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| ContractError::Toml {
            path: contract_path.clone(),
            message: e.to_string().trim_end().to_string(),
        })?;
        match table.get("collection").and_then(toml::Value::as_str) {
            Some(c) if c == collection => {}
            Some(c) => {
                return Err(invalid(
                    &contract_path,
                    format!("is the contract of collection {c:?}, not {collection:?}"),
                ))
            }
            None => return Err(invalid(&contract_path, "has no `collection`")),
        }
        let target = table
            .get("target")
            .and_then(toml::Value::as_integer)
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| invalid(&contract_path, "has no valid `target`"))?;
        let mut declared = Vec::new();
        if let Some(vs) = table.get("versions") {
            let arr = vs
                .as_array()
                .ok_or_else(|| invalid(&contract_path, "`versions` must be an array"))?;
            for v in arr {
                let n = v
                    .get("version")
                    .and_then(toml::Value::as_integer)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        invalid(
                            &contract_path,
                            "a [[versions]] entry has no valid `version`",
                        )
                    })?;
                let schema = v
                    .get("schema")
                    .and_then(toml::Value::as_str)
                    .map(String::from);
                declared.push((n, schema));
            }
        }
        (Some(text), declared, Some(target))
    } else {
        (None, Vec::new(), None)
    };
    let highest = declared.iter().map(|(n, _)| *n).max();
    let version = match (version, highest) {
        (Some(v), _) => v,
        (None, Some(h)) => h
            .checked_add(1)
            .ok_or_else(|| invalid(&contract_path, "no version number left"))?,
        (None, None) => 1,
    };
    if declared.iter().any(|(n, _)| *n == version) {
        return Err(invalid(
            &contract_path,
            format!(
                "version {version} already exists; refusing to overwrite it \
                 (pull as another version with --version N)"
            ),
        ));
    }
    let file = format!("v{version}.schema.json");
    if let Some((n, _)) = declared
        .iter()
        .find(|(_, s)| s.as_deref() == Some(file.as_str()))
    {
        return Err(invalid(
            &contract_path,
            format!("version {n} already uses {file}; refusing to overwrite it"),
        ));
    }
    let schema_path = dir.join(&file);
    if schema_path.exists() {
        return Err(invalid(
            &schema_path,
            "already exists; refusing to overwrite it (remove it or pull with --version N)",
        ));
    }
    Ok(Prepared {
        collection: collection.to_string(),
        dir,
        contract_path,
        schema_path,
        version,
        target: target.unwrap_or(version),
        existing,
    })
}

/// A TOML key: bare when it can be, else a quoted string.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        toml_string(k)
    }
}

/// A TOML basic string.
pub(crate) fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One index as a contract entry: `{ key = { status = 1, created_at = -1 }, unique = true, name = "…" }`.
pub fn index_entry(ix: &IndexSpec) -> String {
    let fields: Vec<String> = ix
        .key
        .0
        .iter()
        .map(|(f, d)| {
            let d = match d {
                KeyDirection::Asc => "1".to_string(),
                KeyDirection::Desc => "-1".to_string(),
                KeyDirection::Special(s) => toml_string(s),
            };
            format!("{} = {d}", toml_key(f))
        })
        .collect();
    let mut options = String::new();
    if ix.unique {
        options.push_str(", unique = true");
    }
    if ix.sparse {
        options.push_str(", sparse = true");
    }
    if let Some(n) = &ix.name {
        options.push_str(&format!(", name = {}", toml_string(n)));
    }
    format!("{{ key = {{ {} }}{options} }}", fields.join(", "))
}

/// The `[[versions]]` entry for a pulled version (the implicit `_id_` index left out).
pub fn version_entry(version: u32, indexes: &[IndexSpec], comment: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(c) = comment {
        for line in c.lines() {
            s.push_str(&format!("# {line}\n"));
        }
    }
    s.push_str(&format!(
        "[[versions]]\nversion = {version}\nschema = {}\n",
        toml_string(&format!("v{version}.schema.json"))
    ));
    let entries: Vec<String> = indexes
        .iter()
        .filter(|ix| !is_id_index(ix))
        .map(index_entry)
        .collect();
    if entries.is_empty() {
        s.push_str("indexes = []\n");
    } else {
        s.push_str("indexes = [\n");
        for e in entries {
            s.push_str(&format!("  {e},\n"));
        }
        s.push_str("]\n");
    }
    s
}

/// The implicit `_id_` index.
pub fn is_id_index(ix: &IndexSpec) -> bool {
    ix.name.as_deref() == Some("_id_") || (ix.key.is_id_only() && !ix.unique && ix.name.is_none())
}

/// Writes the schema file and the contract entry (each atomically), then loads the contract;
/// if it does not load, both files are put back as they were.
pub fn write(
    p: &Prepared,
    schema: &Value,
    indexes: &[IndexSpec],
    comment: Option<&str>,
) -> Result<Written, ContractError> {
    let entry = version_entry(p.version, indexes, comment);
    let text = match &p.existing {
        Some(old) => {
            let mut t = old.trim_end().to_string();
            t.push_str("\n\n");
            t.push_str(&entry);
            t
        }
        None => format!(
            "collection = {}\ntarget = {}\n\n{entry}",
            toml_string(&p.collection),
            p.version
        ),
    };
    if let Err(e) = toml::from_str::<toml::Table>(&text) {
        return Err(invalid(
            &p.contract_path,
            format!(
                "cannot append a [[versions]] entry to it ({}); add this by hand:\n{entry}",
                e.to_string().trim_end()
            ),
        ));
    }
    // Re-checked: another process may have written it since prepare().
    if p.schema_path.exists() {
        return Err(invalid(
            &p.schema_path,
            "already exists; refusing to overwrite it",
        ));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContractError::Io { path, source }
    };
    std::fs::create_dir_all(&p.dir).map_err(io(&p.dir))?;
    let mut json = serde_json::to_string_pretty(schema).expect("a JSON value serialises");
    json.push('\n');
    crate::os::write_atomic(&p.schema_path, json.as_bytes(), crate::os::Access::Shared)
        .map_err(io(&p.schema_path))?;
    let undo = || {
        let _ = std::fs::remove_file(&p.schema_path);
        match &p.existing {
            Some(old) => {
                let _ = crate::os::write_atomic(
                    &p.contract_path,
                    old.as_bytes(),
                    crate::os::Access::Shared,
                );
            }
            None => {
                let _ = std::fs::remove_file(&p.contract_path);
            }
        }
    };
    if let Err(e) =
        crate::os::write_atomic(&p.contract_path, text.as_bytes(), crate::os::Access::Shared)
    {
        undo();
        return Err(io(&p.contract_path)(e));
    }
    match super::load(&p.contract_path) {
        Ok(c) => Ok(Written {
            version: p.version,
            schema_path: p.schema_path.clone(),
            contract_path: p.contract_path.clone(),
            created: p.existing.is_none(),
            target: c.target,
            indexes: c.version(p.version).map_or(0, |v| v.indexes.len()),
        }),
        Err(e) => {
            undo();
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests;
