//! The connection to a live deployment and the guarded writes (see the module comment of
//! [`super`] for the guards each server allows).

use super::*;

/// An open connection to the plan's collection.
pub struct Target {
    uri: String,
    pub(super) db: Database,
    pub coll: Collection<RawDocumentBuf>,
    pub collection: String,
    pub database: String,
    pub redacted: String,
    pub ferretdb: bool,
    /// `MongoDB` or `FerretDB <version>`.
    pub server: String,
    pub guard: Guard,
    /// The user accepted the top-level guard (`--guard top-level`).
    pub accept_top_level: bool,
    /// Prefixed to the keys of the journal's settled sets: `COLLECTION/` in a plan over
    /// several collections, where one `_id` may be in more than one.
    pub key_prefix: String,
}

impl Target {
    /// Connects to `recorded` (the plan's or journal's redacted source), using `given`
    /// (with the password) when there is one; they must name the same deployment.
    pub fn connect(
        recorded: &str,
        given: Option<&str>,
        database: Option<&str>,
        collection: &str,
        accept_top_level: bool,
    ) -> Result<Target, ApplyError> {
        let uri = match given {
            Some(g) => {
                if redact_uri(g) != recorded {
                    return Err(usage(format!(
                        "--uri {} is not the deployment the plan was made from ({recorded})",
                        redact_uri(g)
                    )));
                }
                g.to_string()
            }
            None => {
                if password_span(recorded).is_some_and(|r| &recorded[r] == "****") {
                    return Err(usage(format!(
                        "{recorded}: the password is not recorded; pass the connection string with --uri"
                    )));
                }
                recorded.to_string()
            }
        };
        let mut opts = ClientOptions::parse(&uri)
            .run()
            .map_err(|e| server_err(&uri, "invalid connection string", e))?;
        if opts.server_selection_timeout.is_none() {
            opts.server_selection_timeout = Some(Duration::from_secs(10));
        }
        if opts.connect_timeout.is_none() {
            opts.connect_timeout = Some(Duration::from_secs(10));
        }
        opts.app_name.get_or_insert_with(|| "docsweep".to_string());
        let db_name = match (database, opts.default_database.clone()) {
            (Some(d), _) => d.to_string(),
            (None, Some(d)) => d,
            (None, None) => {
                return Err(usage(format!(
                    "{}: no database in the plan or the URI",
                    redact_uri(&uri)
                )))
            }
        };
        let client =
            Client::with_options(opts).map_err(|e| server_err(&uri, "cannot create client", e))?;
        let db = client.database(&db_name);
        let info = db
            .run_command(doc! {"buildInfo": 1})
            .run()
            .map_err(|e| server_err(&uri, "cannot reach the server", e))?;
        let ferretdb = info
            .get("ferretdbVersion")
            .map(|v| v.as_str().unwrap_or("?").to_string());
        Ok(Target {
            coll: db.collection::<RawDocumentBuf>(collection),
            redacted: redact_uri(&uri),
            collection: collection.to_string(),
            database: db_name,
            ferretdb: ferretdb.is_some(),
            guard: if ferretdb.is_some() {
                Guard::TopLevel
            } else {
                Guard::Document
            },
            accept_top_level,
            key_prefix: String::new(),
            server: match ferretdb {
                Some(v) => format!("FerretDB {v}"),
                None => "MongoDB".to_string(),
            },
            db,
            uri,
        })
    }

    /// Refuses (before anything is written) `n` writes over or deletions of existing
    /// documents (`what`) where the only guard is the top-level one and the user did not
    /// accept it.
    pub(super) fn require_guard(&self, n: usize, what: &str) -> Result<(), ApplyError> {
        if n == 0 || self.guard == Guard::Document || self.accept_top_level {
            return Ok(());
        }
        Err(usage(format!(
            "{}: the server is {}, which cannot make a write conditional on the whole \
             document: it runs every update, findAndModify and delete as a read followed by \
             a write by _id, not atomically, so another client's write to the same document \
             in between is lost. {n} {what}; nothing was written. Pass --guard top-level to \
             accept the weaker guard (every top-level field compared, see the README), or \
             use a MongoDB server.",
            self.describe(),
            self.server
        )))
    }

    /// The guard filter for replacing or deleting `current` (the document as read, whose
    /// fingerprint was checked against the plan).
    pub(super) fn guard_filter(&self, current: &RawDocumentBuf) -> Result<Document, ApplyError> {
        let d = Document::try_from(current.as_ref()).map_err(undecodable)?;
        let id = d
            .get("_id")
            .cloned()
            .ok_or_else(|| usage("a document without _id cannot be written"))?;
        match self.guard {
            Guard::Document => Ok(whole_document_filter(id, d)),
            Guard::TopLevel => top_level_filter(&d),
        }
    }

    pub(super) fn err(&self, context: &str, e: impl std::fmt::Display) -> ApplyError {
        server_err(&self.uri, context, e)
    }

    pub(super) fn describe(&self) -> String {
        format!("{} {}.{}", self.redacted, self.database, self.collection)
    }

    /// An entry's key in the journal's settled sets.
    pub(super) fn key(&self, k: &str) -> String {
        format!("{}{k}", self.key_prefix)
    }

    /// The current documents with these `_id`s, by `_id` text.
    pub(super) fn current(
        &self,
        coll: &Collection<RawDocumentBuf>,
        ids: &[Bson],
    ) -> Result<HashMap<String, RawDocumentBuf>, ApplyError> {
        let mut out = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let cursor = coll
            .find(doc! {"_id": {"$in": ids.to_vec()}})
            .run()
            .map_err(|e| self.err(&format!("find in {}", coll.name()), e))?;
        for d in cursor {
            let d = d.map_err(|e| self.err(&format!("find in {}", coll.name()), e))?;
            let v = decode(d.as_bytes())?;
            out.insert(id_of(&v), d);
        }
        Ok(out)
    }

    /// The collection's indexes as relaxed JSON, by name.
    pub(super) fn indexes(&self) -> Result<HashMap<String, Value>, ApplyError> {
        let mut out = HashMap::new();
        let cursor = match self
            .db
            .run_cursor_command(doc! {"listIndexes": &self.collection})
            .run()
        {
            Ok(c) => c,
            // NamespaceNotFound: no collection, no indexes.
            Err(e) if command_code(&e) == Some(26) => return Ok(out),
            Err(e) => return Err(self.err("listIndexes", e)),
        };
        for d in cursor {
            let d: Document = d.map_err(|e| self.err("listIndexes", e))?;
            let bytes = d.to_vec().map_err(|e| self.err("listIndexes", e))?;
            let v = decode(&bytes)?;
            if let Some(name) = v["name"].as_str() {
                out.insert(name.to_string(), v);
            }
        }
        Ok(out)
    }
}

pub(super) fn undecodable(e: impl std::fmt::Display) -> ApplyError {
    usage(format!("a document cannot be decoded: {e}"))
}

pub(super) fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    use mongodb::error::{ErrorKind, WriteFailure};
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .and_then(|w| w.first())
            .map(|w| w.code),
        _ => None,
    }
}

pub(super) fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    command_code(e) == Some(11000) || e.to_string().contains("E11000")
}

/// The whole-document guard: the `_id` (so that the `_id` index finds the document) and
/// the whole document equal to `d`, field order and sub-documents included. `$literal`
/// keeps strings that start with `$` and fields named like operators from being read as
/// expressions.
pub(super) fn whole_document_filter(id: Bson, d: Document) -> Document {
    doc! {
        "_id": id,
        "$expr": {"$eq": ["$$ROOT", {"$literal": Bson::Document(d)}]},
    }
}

/// A top-level field name an update or a filter can address as itself (not a path, not
/// an operator).
pub(super) fn plain_name(k: &str) -> Result<(), ApplyError> {
    if k.is_empty() || k.starts_with('$') || k.contains('.') {
        return Err(usage(format!(
            "field {k:?}: a name that a filter or an update cannot address exactly; \
             this document needs the whole-document guard (MongoDB)"
        )));
    }
    Ok(())
}

/// The top-level guard: the `_id` and the exact value of every other top-level field
/// (`$eq`; sub-documents compare whole, field order included), numbers and null pinned to
/// their BSON type as well (`$eq` alone takes 5 for 5.0, and null for a missing field).
/// A field added by someone else is not seen (see the module documentation).
pub(super) fn top_level_filter(d: &Document) -> Result<Document, ApplyError> {
    let mut f = Document::new();
    for (k, v) in d {
        if k == "_id" {
            f.insert("_id", v.clone());
            continue;
        }
        plain_name(k)?;
        let mut cond = doc! {"$eq": v.clone()};
        let ty = match v {
            Bson::Double(_) => Some("double"),
            Bson::Int32(_) => Some("int"),
            Bson::Int64(_) => Some("long"),
            Bson::Decimal128(_) => Some("decimal"),
            Bson::Null => Some("null"),
            _ => None,
        };
        if let Some(ty) = ty {
            cond.insert("$type", ty);
        }
        f.insert(k.clone(), cond);
    }
    Ok(f)
}

/// The update that turns `current` into `new` touching only the top-level fields that
/// differ: `$set` for changed and new ones, `$unset` for removed ones. Fields it keeps
/// stay where they are; new ones are appended (in name order, as servers apply `$set`).
pub(super) fn top_level_update(
    current: &RawDocumentBuf,
    new: &RawDocumentBuf,
) -> Result<Document, ApplyError> {
    let cur = Document::try_from(current.as_ref()).map_err(undecodable)?;
    let new = Document::try_from(new.as_ref()).map_err(undecodable)?;
    let mut set = Document::new();
    let mut unset = Document::new();
    for (k, v) in &new {
        if cur.get(k) == Some(v) {
            continue;
        }
        if k == "_id" {
            return Err(usage("an after-image with another _id cannot be written"));
        }
        plain_name(k)?;
        set.insert(k.clone(), v.clone());
    }
    for k in cur.keys() {
        if !new.contains_key(k) {
            plain_name(k)?;
            unset.insert(k.clone(), "");
        }
    }
    let mut u = Document::new();
    if !set.is_empty() {
        u.insert("$set", set);
    }
    if !unset.is_empty() {
        u.insert("$unset", unset);
    }
    Ok(u)
}

/// The fingerprint a guard compares states by: in field order for the whole-document
/// guard; with the top-level fields in name order for the top-level one, whose updates
/// cannot put a new field where the after-image has it.
pub(super) fn state_fp(v: &Value, guard: Guard) -> u128 {
    match (guard, v) {
        (Guard::TopLevel, Value::Object(m)) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let sorted: serde_json::Map<String, Value> = keys
                .into_iter()
                .map(|k| (k.clone(), m[k].clone()))
                .collect();
            fp(&Value::Object(sorted))
        }
        _ => fp(v),
    }
}

pub(super) fn state_fp_raw(bytes: &[u8], guard: Guard) -> Result<u128, ApplyError> {
    decode(bytes).map(|v| state_fp(&v, guard))
}

/// How one guarded write ended.
pub(super) enum Cas {
    Written,
    Already,
    Conflict(Reason),
}

/// After a guarded write matched nothing (nothing was written): why, from the document
/// as it is now. `goal` is the fingerprint (`state_fp`) of the state the write wanted;
/// `gone` what a missing document means.
pub(super) fn missed(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    id: &Bson,
    goal: Option<u128>,
    gone: Cas,
    changed: Reason,
) -> Result<Cas, ApplyError> {
    let now = t.current(coll, std::slice::from_ref(id))?;
    let Some(d) = now.into_values().next() else {
        return Ok(gone);
    };
    if goal.is_some() && Some(state_fp_raw(d.as_bytes(), t.guard)?) == goal {
        return Ok(Cas::Already);
    }
    Ok(Cas::Conflict(changed))
}

pub(super) fn id_bson(d: &RawDocumentBuf) -> Result<Bson, ApplyError> {
    let d = Document::try_from(d.as_ref()).map_err(undecodable)?;
    d.get("_id")
        .cloned()
        .ok_or_else(|| usage("a document without _id cannot be written"))
}

/// Replaces `current` (the document as read, already checked against the plan) with
/// `new`, in one write that the server makes only while the document is still `current`
/// (see `Guard`). Nothing is written otherwise: a conflict (`changed`), `not found`, or
/// already the wanted state. Nothing is ever written back afterwards.
pub(super) fn guarded_replace(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    current: &RawDocumentBuf,
    new: &RawDocumentBuf,
    changed: Reason,
) -> Result<Cas, ApplyError> {
    let filter = t.guard_filter(current)?;
    let context = || format!("guarded write in {}", coll.name());
    let written = match t.guard {
        Guard::Document => {
            let r = coll
                .replace_one(filter, new)
                .run()
                .map_err(|e| t.err(&context(), e))?;
            r.matched_count == 1
        }
        Guard::TopLevel => {
            let update = top_level_update(current, new)?;
            let result = coll
                .find_one_and_update(filter, update)
                .return_document(ReturnDocument::After)
                .run()
                .map_err(|e| t.err(&context(), e))?;
            match result {
                Some(now) => {
                    if state_fp_raw(now.as_bytes(), t.guard)?
                        != state_fp_raw(new.as_bytes(), t.guard)?
                    {
                        crate::eoutln!(
                            "docsweep: {}: _id {}: written, and the document also holds a change the top-level guard cannot see (a field added since it was read); that change was kept",
                            coll.name(),
                            id_of(&decode(now.as_bytes())?)
                        );
                    }
                    true
                }
                None => false,
            }
        }
    };
    if written {
        return Ok(Cas::Written);
    }
    let goal = state_fp_raw(new.as_bytes(), t.guard)?;
    missed(
        t,
        coll,
        &id_bson(current)?,
        Some(goal),
        Cas::Conflict(Reason::NotFound),
        changed,
    )
}

/// Deletes `current` (the document as read) in one write that the server makes only
/// while the document is still `current`. Returns the outcome and, when written, the
/// document the server deleted.
pub(super) fn guarded_delete(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    current: &RawDocumentBuf,
    changed: Reason,
) -> Result<(Cas, Option<RawDocumentBuf>), ApplyError> {
    let filter = t.guard_filter(current)?;
    let context = || format!("guarded delete in {}", coll.name());
    let deleted = match t.guard {
        Guard::Document => {
            let r = coll
                .delete_one(filter)
                .run()
                .map_err(|e| t.err(&context(), e))?;
            (r.deleted_count == 1).then(|| current.clone())
        }
        Guard::TopLevel => {
            let old = coll
                .find_one_and_delete(filter)
                .run()
                .map_err(|e| t.err(&context(), e))?;
            if let Some(old) = &old {
                if state_fp_raw(old.as_bytes(), t.guard)?
                    != state_fp_raw(current.as_bytes(), t.guard)?
                {
                    crate::eoutln!(
                        "docsweep: {}: _id {}: deleted with a field added since it was read (the top-level guard cannot see added fields)",
                        coll.name(),
                        id_of(&decode(old.as_bytes())?)
                    );
                }
            }
            old
        }
    };
    if deleted.is_some() {
        return Ok((Cas::Written, deleted));
    }
    let r = missed(t, coll, &id_bson(current)?, None, Cas::Already, changed)?;
    Ok((r, None))
}

/// Inserts `doc` unless a document with its `_id` is there (an insert is atomic on every
/// server): the same one is already done, another one is a conflict.
pub(super) fn insert_absent(
    t: &Target,
    coll: &Collection<RawDocumentBuf>,
    doc: &RawDocumentBuf,
) -> Result<Cas, ApplyError> {
    match coll.insert_one(doc).run() {
        Ok(_) => Ok(Cas::Written),
        Err(err) if is_duplicate_key(&err) => {
            let goal = state_fp_raw(doc.as_bytes(), t.guard)?;
            missed(
                t,
                coll,
                &id_bson(doc)?,
                Some(goal),
                Cas::Conflict(Reason::IdTaken),
                Reason::IdTaken,
            )
        }
        Err(err) => Err(t.err(&format!("insert into {}", coll.name()), err)),
    }
}

/// Quarantine: the document goes into the quarantine target first, then leaves the
/// collection with a guarded delete; when that deletes nothing, the copy leaves the
/// quarantine collection again (a guarded delete of docsweep's own copy).
pub(super) fn quarantine(
    t: &Target,
    e: &Entry,
    cur: &RawDocumentBuf,
    files: &mut FileQuarantine,
) -> Result<Cas, ApplyError> {
    let qcoll = quarantine_collection(e, &t.collection);
    match &qcoll {
        Some(q) => {
            let qc = t.db.collection::<RawDocumentBuf>(q);
            if let Cas::Conflict(_) = insert_absent(t, &qc, cur)? {
                return Ok(Cas::Conflict(Reason::IdTaken));
            }
        }
        None => {
            let file =
                e.to.as_deref()
                    .and_then(|s| s.strip_prefix("file:"))
                    .unwrap_or("quarantine.jsonl");
            files.put(Path::new(file), &decode(cur.as_bytes())?)?;
        }
    }
    let (r, deleted) = guarded_delete(t, &t.coll, cur, Reason::ChangedSincePlan)?;
    if let Some(q) = &qcoll {
        let qc = t.db.collection::<RawDocumentBuf>(q);
        match (&r, deleted) {
            // What left the collection is what the quarantine keeps (the top-level guard
            // may have deleted a document with an added field).
            (Cas::Written, Some(old)) if old.as_bytes() != cur.as_bytes() => {
                qc.replace_one(doc! {"_id": id_bson(cur)?}, &old)
                    .run()
                    .map_err(|err| t.err(&format!("replace in {q}"), err))?;
            }
            (Cas::Written, _) => {}
            _ => {
                guarded_delete(t, &qc, cur, Reason::ChangedSincePlan)?;
            }
        }
    }
    Ok(r)
}

/// The quarantine collection of an entry (None for a file target).
pub(super) fn quarantine_collection(entry: &Entry, coll: &str) -> Option<String> {
    match entry.to.as_deref() {
        Some(t) if t.starts_with("file:") => None,
        Some(t) => Some(t.strip_prefix("collection:").unwrap_or(t).to_string()),
        None => Some(format!("{coll}_quarantine")),
    }
}

/// Documents quarantined into files: the `_id`s each file holds already, so that a
/// resumed run never appends one twice.
#[derive(Default)]
pub(super) struct FileQuarantine {
    ids: HashMap<PathBuf, HashSet<String>>,
}

impl FileQuarantine {
    pub(super) fn put(&mut self, path: &Path, doc: &Value) -> Result<(), ApplyError> {
        let io = |e: std::io::Error| ApplyError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if !self.ids.contains_key(path) {
            let mut have = HashSet::new();
            if let Ok(text) = std::fs::read_to_string(path) {
                for line in text.lines() {
                    if let Ok(v) = serde_json::from_str::<Value>(line) {
                        have.insert(id_of(&v));
                    }
                }
            }
            self.ids.insert(path.to_path_buf(), have);
        }
        let have = self.ids.get_mut(path).expect("inserted above");
        let id = id_of(doc);
        if have.contains(&id) {
            return Ok(());
        }
        let mut f = crate::os::open_append(path, crate::os::Access::Private).map_err(io)?;
        writeln!(f, "{doc}").map_err(io)?;
        f.sync_data().map_err(io)?;
        have.insert(id);
        Ok(())
    }
}
