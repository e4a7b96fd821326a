//! The library of templates: the bundled ones (compiled in) and those of user directories.

use super::{Template, TemplateError};
use std::path::{Path, PathBuf};

/// The bundled templates, compiled in so the binary works anywhere.
pub(super) const BUNDLED: &[(&str, &str)] = &[
    (
        "cents-from-units.toml",
        include_str!("../../../repair-templates/cents-from-units.toml"),
    ),
    (
        "convert-field-type.toml",
        include_str!("../../../repair-templates/convert-field-type.toml"),
    ),
    (
        "create-missing-index.toml",
        include_str!("../../../repair-templates/create-missing-index.toml"),
    ),
    (
        "dedupe-keep-first.toml",
        include_str!("../../../repair-templates/dedupe-keep-first.toml"),
    ),
    (
        "drop-unexpected-index.toml",
        include_str!("../../../repair-templates/drop-unexpected-index.toml"),
    ),
    (
        "lowercase-email.toml",
        include_str!("../../../repair-templates/lowercase-email.toml"),
    ),
    (
        "quarantine-invalid.toml",
        include_str!("../../../repair-templates/quarantine-invalid.toml"),
    ),
    (
        "quarantine-orphans.toml",
        include_str!("../../../repair-templates/quarantine-orphans.toml"),
    ),
    (
        "quarantine-added.toml",
        include_str!("../../../repair-templates/quarantine-added.toml"),
    ),
    (
        "rename-field.toml",
        include_str!("../../../repair-templates/rename-field.toml"),
    ),
    (
        "restore-changed.toml",
        include_str!("../../../repair-templates/restore-changed.toml"),
    ),
    (
        "restore-missing.toml",
        include_str!("../../../repair-templates/restore-missing.toml"),
    ),
    (
        "revert-nested-reference.toml",
        include_str!("../../../repair-templates/revert-nested-reference.toml"),
    ),
    (
        "revert-split-field.toml",
        include_str!("../../../repair-templates/revert-split-field.toml"),
    ),
    (
        "set-default.toml",
        include_str!("../../../repair-templates/set-default.toml"),
    ),
    (
        "units-from-cents.toml",
        include_str!("../../../repair-templates/units-from-cents.toml"),
    ),
];

/// Where bundled templates say they come from.
pub const BUNDLED_DIR: &str = "repair-templates";

/// A set of templates with unique names.
#[derive(Debug, Clone, Default)]
pub struct Library {
    pub templates: Vec<Template>,
}

impl Library {
    /// The bundled templates.
    pub fn bundled() -> Result<Library, TemplateError> {
        let mut lib = Library::default();
        for (file, text) in BUNDLED {
            let path = Path::new(BUNDLED_DIR).join(file);
            lib.add(Template::parse(text, &path)?, false)?;
        }
        Ok(lib)
    }

    /// The bundled templates plus every `*.toml` in `dirs` (sorted by file name). A user
    /// template with the name of a bundled one is an error, unless it is the very same
    /// file (e.g. `--dir repair-templates` in a checkout).
    pub fn load(dirs: &[PathBuf]) -> Result<Library, TemplateError> {
        let mut lib = Library::bundled()?;
        for dir in dirs {
            let entries = std::fs::read_dir(dir).map_err(|source| TemplateError::Io {
                path: dir.clone(),
                source,
            })?;
            let mut files = Vec::new();
            for e in entries {
                let e = e.map_err(|source| TemplateError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
                    files.push(p);
                }
            }
            files.sort();
            for p in files {
                let text = std::fs::read_to_string(&p).map_err(|source| TemplateError::Io {
                    path: p.clone(),
                    source,
                })?;
                if BUNDLED.iter().any(|(_, b)| *b == text) {
                    continue;
                }
                lib.add(Template::parse(&text, &p)?, true)?;
            }
        }
        Ok(lib)
    }

    pub(super) fn add(&mut self, t: Template, user: bool) -> Result<(), TemplateError> {
        if let Some(prev) = self.get(&t.name) {
            return Err(TemplateError::Duplicate {
                path: t.source_file.clone(),
                name: t.name.clone(),
                other: prev.source_file.clone(),
                bundled: user && Library::is_bundled(prev),
            });
        }
        self.templates.push(t);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// The text of a template's file (compiled in for bundled templates).
    pub fn source_text(t: &Template) -> Option<String> {
        if Library::is_bundled(t) {
            let f = t.source_file.file_name()?;
            return BUNDLED
                .iter()
                .find(|(n, _)| std::ffi::OsStr::new(n) == f)
                .map(|(_, text)| (*text).to_string());
        }
        std::fs::read_to_string(&t.source_file).ok()
    }

    /// The comment block at the top of a template file, without the `#` marks.
    pub fn header_comment(text: &str) -> String {
        let mut out = Vec::new();
        for line in text.lines() {
            let l = line.trim_start();
            let Some(c) = l.strip_prefix('#') else { break };
            out.push(c.strip_prefix(' ').unwrap_or(c).trim_end());
        }
        out.join("\n").trim().to_string()
    }

    /// Whether `t` is one of the bundled templates.
    pub fn is_bundled(t: &Template) -> bool {
        t.source_file.parent() == Some(Path::new(BUNDLED_DIR))
            && BUNDLED
                .iter()
                .any(|(f, _)| t.source_file.file_name() == Some(std::ffi::OsStr::new(f)))
    }
}
