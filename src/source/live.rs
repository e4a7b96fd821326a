//! `mongodb://` and `mongodb+srv://` sources: a live deployment read through the official
//! driver. Documents arrive as raw BSON (never decoded into driver documents) sorted by
//! `_id`, and feed the same record path as a dump. Transient failures are retried with
//! backoff, resuming after the last `_id` read so that no document is counted twice.
//! Nothing here ever writes.

use std::time::Duration;

use bson::{doc, Bson, Document, RawDocumentBuf};
use mongodb::options::{
    ClientOptions, ReadConcern, ReadPreference, ReadPreferenceOptions, SelectionCriteria,
};
use mongodb::sync::{Client, Collection, Cursor, Database};

use super::partition::{Bound, Partition};
use super::{
    redact_uri, Batch, CollectionKind, CollectionSource, Encoding, Location, Record, RecordReader,
    Resume, Source, SourceError, SourceSpec, BATCH_BYTES,
};
use crate::contract::IndexSpec;

/// How a live scan reads; settable from the command line.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Documents per server round trip.
    pub batch_size: u32,
    /// Server-side time limit per round trip (`maxTimeMS`).
    pub max_time: Option<Duration>,
    /// Retries of a failed read before the scan gives up.
    pub retries: u32,
    /// Initial backoff between retries (doubled each time).
    pub backoff: Duration,
    /// Server selection timeout unless the URI sets `serverSelectionTimeoutMS`.
    pub selection_timeout: Duration,
    /// Ask for each collection's estimated size (only progress bars need it; some servers
    /// answer with a full count).
    pub estimate_counts: bool,
    /// `--read-preference`: where to read (a mode such as `secondary`), over the URI's
    /// `readPreference`; without either, the primary.
    pub read_preference: Option<String>,
    /// `--max-staleness`: seconds a secondary may lag to be read from (`maxStalenessSeconds`).
    pub max_staleness: Option<u64>,
    /// `--query`: the filter one collection is read with (the others are read whole).
    pub query: Option<super::Query>,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            batch_size: 1000,
            max_time: None,
            retries: 5,
            backoff: Duration::from_millis(250),
            selection_timeout: Duration::from_secs(10),
            estimate_counts: false,
            read_preference: None,
            max_staleness: None,
            query: None,
        }
    }
}

/// A read preference from its mode name and an optional staleness bound.
pub fn read_preference(mode: &str, max_staleness: Option<u64>) -> Result<ReadPreference, String> {
    let options = Some(
        ReadPreferenceOptions::builder()
            .max_staleness(max_staleness.map(Duration::from_secs))
            .build(),
    );
    Ok(match mode {
        "primary" if max_staleness.is_some() => {
            return Err("--max-staleness needs a read preference other than primary".into())
        }
        "primary" => ReadPreference::Primary,
        "primaryPreferred" => ReadPreference::PrimaryPreferred { options },
        "secondary" => ReadPreference::Secondary { options },
        "secondaryPreferred" => ReadPreference::SecondaryPreferred { options },
        "nearest" => ReadPreference::Nearest { options },
        other => {
            return Err(format!(
                "--read-preference {other:?}: expected primary, primaryPreferred, secondary, \
                 secondaryPreferred or nearest"
            ))
        }
    })
}

/// An open connection to a deployment's database.
#[derive(Clone)]
pub struct Live {
    db: Database,
    uri: String,
    pub options: LiveOptions,
    /// The server is FerretDB, which stores no MinKey/MaxKey values and rejects `$type`
    /// queries for them.
    ferretdb: bool,
    /// The servers that answered a `find` or `getMore` (host:port), as the driver saw them.
    served: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
    /// What the reads were routed by.
    selection: SelectionCriteria,
    client: Client,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("uri", &redact_uri(&self.uri))
            .field("database", &self.db.name())
            .finish_non_exhaustive()
    }
}

/// A driver error as a person would say it: "cannot connect to HOST: connection refused
/// (after 10 s)" for a server that could not be reached, else the driver's own text.
pub fn describe(e: &mongodb::error::Error, selection_timeout: Option<Duration>) -> String {
    let mongodb::error::ErrorKind::ServerSelection { message, .. } = e.kind.as_ref() else {
        return e.to_string();
    };
    // The driver lists each server it tried: "Address: H:P, Type: …, Error: Kind: WHY, labels…"
    let mut reasons = Vec::new();
    for part in message.split("Address: ").skip(1) {
        let address = part.split(',').next().unwrap_or_default().trim();
        let why = part
            .split_once("Error: ")
            .map(|(_, rest)| rest)
            .map(|rest| rest.split(", labels").next().unwrap_or(rest))
            .map(|w| {
                w.trim_start_matches("Kind: ")
                    .trim_start_matches("I/O error: ")
            })
            .map(|w| {
                let w = w.split(" (os error").next().unwrap_or(w);
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_lowercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .unwrap_or_else(|| "no answer".to_string());
        reasons.push(format!("{address}: {why}"));
    }
    let after = selection_timeout
        .map(|t| format!(" (after {} s)", t.as_secs_f64().round()))
        .unwrap_or_default();
    if reasons.is_empty() {
        format!("cannot find a server to read from{after}")
    } else {
        format!("cannot connect to {}{after}", reasons.join("; "))
    }
}

/// Driver errors, with anything that looks like the URI's password masked.
fn err(uri: &str, context: &str, e: impl std::fmt::Display) -> SourceError {
    masked(uri, format!("{}: {context}: {e}", redact_uri(uri)))
}

/// A source failure whose message has the URI's password masked.
fn masked(uri: &str, mut msg: String) -> SourceError {
    if let Some(r) = super::password_span(uri) {
        let pw = &uri[r];
        if !pw.is_empty() {
            msg = msg.replace(pw, "****");
        }
    }
    SourceError::Other(msg)
}

pub(super) fn open(
    spec: &SourceSpec,
    uri: &str,
    db: Option<&str>,
    options: &LiveOptions,
) -> Result<Source, SourceError> {
    let mut opts = ClientOptions::parse(uri)
        .run()
        .map_err(|e| err(uri, "invalid connection string", e))?;
    // Right after a rollback a lagging secondary is the wrong witness: read the primary
    // with read concern majority (as mongodump reads the primary), unless told otherwise.
    match &options.read_preference {
        Some(mode) => {
            let pref = read_preference(mode, options.max_staleness)
                .map_err(|m| SourceError::Other(format!("{}: {m}", redact_uri(uri))))?;
            opts.selection_criteria = Some(SelectionCriteria::ReadPreference(pref));
        }
        None if opts.selection_criteria.is_none() => {
            if options.max_staleness.is_some() {
                return Err(SourceError::Other(
                    "--max-staleness needs --read-preference (other than primary)".into(),
                ));
            }
            opts.selection_criteria =
                Some(SelectionCriteria::ReadPreference(ReadPreference::Primary));
        }
        None => {}
    }
    if opts.read_concern.is_none() {
        opts.read_concern = Some(ReadConcern::majority());
    }
    if opts.server_selection_timeout.is_none() {
        opts.server_selection_timeout = Some(options.selection_timeout);
    }
    if opts.connect_timeout.is_none() {
        opts.connect_timeout = Some(options.selection_timeout);
    }
    opts.app_name.get_or_insert_with(|| "docsweep".to_string());
    // Where each read was done: the address of every server that answered a find or
    // getMore (the driver's command events; nothing else is recorded).
    let served = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let seen = served.clone();
    opts.command_event_handler = Some(mongodb::event::EventHandler::callback(
        move |ev: mongodb::event::command::CommandEvent| {
            if let mongodb::event::command::CommandEvent::Succeeded(e) = ev {
                if e.command_name == "find" || e.command_name == "getMore" {
                    if let Ok(mut s) = seen.lock() {
                        s.insert(e.connection.address.to_string());
                    }
                }
            }
        },
    ));
    let selection = opts
        .selection_criteria
        .clone()
        .unwrap_or(SelectionCriteria::ReadPreference(ReadPreference::Primary));
    let db_name = match (db, opts.default_database.clone()) {
        (Some(d), _) => d.to_string(),
        (None, Some(d)) => d,
        (None, None) => {
            return Err(SourceError::Format {
                path: redact_uri(uri).into(),
                message: "no database: put it in the URI path (mongodb://host/DB) or pass --db"
                    .into(),
            })
        }
    };
    let selection_timeout = opts.server_selection_timeout;
    let client = Client::with_options(opts).map_err(|e| err(uri, "cannot create client", e))?;
    let database = client.database(&db_name);
    // Fails fast (within the selection timeout) when the server is unreachable.
    let names = with_retries(options, || database.list_collection_names().run()).map_err(|e| {
        match e.kind.as_ref() {
            mongodb::error::ErrorKind::ServerSelection { .. } => masked(
                uri,
                format!("{}: {}", redact_uri(uri), describe(&e, selection_timeout)),
            ),
            _ => err(uri, "cannot list collections", e),
        }
    })?;
    let mut names: Vec<String> = names
        .into_iter()
        .filter(|n| !n.starts_with("system."))
        .collect();
    names.sort();
    let ferretdb = database
        .run_command(doc! {"buildInfo": 1})
        .run()
        .is_ok_and(|info| info.contains_key("ferretdbVersion"));
    let live = Live {
        db: database,
        uri: uri.to_string(),
        options: options.clone(),
        ferretdb,
        served,
        selection,
        client: client.clone(),
    };
    let collections = names
        .into_iter()
        .map(|name| CollectionSource {
            file: format!("{db_name}.{name}").into(),
            size: if options.estimate_counts {
                live.estimated_count(&name)
            } else {
                0
            },
            name,
            kind: CollectionKind::Live(Box::new(live.clone())),
        })
        .collect();
    Ok(Source {
        spec: spec.clone(),
        database: Some(db_name),
        collections,
        partition: None,
        overlay: None,
    })
}

/// Runs `f`, retrying transient failures with exponential backoff.
fn with_retries<T>(
    o: &LiveOptions,
    mut f: impl FnMut() -> mongodb::error::Result<T>,
) -> mongodb::error::Result<T> {
    let mut delay = o.backoff;
    let mut attempt = 0;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if attempt < o.retries && transient(&e) => {
                attempt += 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Network trouble, elections, killed cursors and shutdowns are worth a retry;
/// authentication and invalid requests are not.
fn transient(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::Authentication { .. }
        | ErrorKind::InvalidArgument { .. }
        | ErrorKind::InvalidResponse { .. } => false,
        // A server selection timeout already waited the whole selection timeout.
        ErrorKind::ServerSelection { .. } => false,
        ErrorKind::Command(c) => {
            // CursorNotFound, InterruptedAtShutdown, InterruptedDueToReplStateChange,
            // NotWritablePrimary, NotPrimaryNoSecondaryOk, PrimarySteppedDown, ShutdownInProgress,
            // HostUnreachable, HostNotFound, NetworkTimeout, SocketException, ExceededTimeLimit.
            matches!(
                c.code,
                43 | 11600 | 11602 | 10107 | 13435 | 189 | 91 | 6 | 7 | 89 | 9001 | 262
            ) || e.contains_label("RetryableReadError")
        }
        _ => true,
    }
}

impl Live {
    pub(super) fn indexes(&self, name: &str) -> Result<Vec<IndexSpec>, SourceError> {
        let cursor = with_retries(&self.options, || {
            self.db.run_cursor_command(doc! {"listIndexes": name}).run()
        })
        .map_err(|e| err(&self.uri, &format!("listIndexes {name}"), e))?;
        let mut out = Vec::new();
        for d in cursor {
            let d: Document = d.map_err(|e| err(&self.uri, &format!("listIndexes {name}"), e))?;
            let bytes = d.to_vec().map_err(|e| err(&self.uri, "listIndexes", e))?;
            let v =
                crate::value::from_bson(&bytes).map_err(|e| err(&self.uri, "listIndexes", e))?;
            out.push(
                IndexSpec::from_server_json(&v.value)
                    .map_err(|m| err(&self.uri, &format!("index of {name}"), m))?,
            );
        }
        Ok(out)
    }

    /// A reader over `name` sorted by `_id`: all of it, or the `_id` range `range`,
    /// starting after `resume` when continuing an interrupted scan.
    pub(super) fn reader(
        &self,
        name: &str,
        range: Option<(Bound, Bound)>,
        resume: &Resume,
    ) -> Result<Box<dyn RecordReader>, SourceError> {
        let coll = self.db.collection::<RawDocumentBuf>(name);
        let empty = matches!(&range, Some((Bound::Max, _)) | Some((_, Bound::Min)));
        let range = match range {
            None => doc! {},
            Some((from, to)) => {
                let mut and = Vec::new();
                if let Bound::At(v) = &from {
                    and.push(Bson::Document(self.order_filter(bson_of(v)?, true)));
                }
                if let Bound::At(v) = &to {
                    and.push(Bson::Document(self.order_filter(bson_of(v)?, false)));
                }
                if and.is_empty() {
                    doc! {}
                } else {
                    doc! {"$and": and}
                }
            }
        };
        // --query: only the documents it matches, in the same `_id` order and ranges.
        let range = match self.query_of(name) {
            None => range,
            Some(q) if range.is_empty() => q.filter.clone(),
            Some(q) => doc! {"$and": [range, q.filter.clone()]},
        };
        let last_id = resume.after_id.as_ref().map(bson_of).transpose()?;
        let mut r = LiveReader {
            live: self.clone(),
            coll,
            range,
            cursor: None,
            last_id,
            read: resume.skip.saturating_sub(resume.skip_after_id),
            failures: 0,
            done: empty,
        };
        if !r.done {
            r.open_cursor()?;
        }
        let reader: Box<dyn RecordReader> = Box::new(r);
        Ok(if resume.skip_after_id > 0 {
            Box::new(super::partition::Skip {
                inner: reader,
                skip: resume.skip_after_id,
            })
        } else {
            reader
        })
    }

    /// `_id >= at` (`from`) or `_id < at` (not `from`) in MongoDB's order over all types:
    /// a comparison operator only matches within one type bracket, so the brackets
    /// after (or before) `at`'s are added by type.
    fn order_filter(&self, at: Bson, from: bool) -> Document {
        let mut types = if from {
            later_types(&at)
        } else {
            earlier_types(&at)
        };
        if self.ferretdb {
            types.retain(|t| !FERRETDB_UNKNOWN_TYPES.contains(t));
        }
        let cmp = if from {
            doc! {"_id": {"$gte": at}}
        } else {
            doc! {"_id": {"$lt": at}}
        };
        let mut or = vec![Bson::Document(cmp)];
        if !types.is_empty() {
            or.push(Bson::Document(doc! {"_id": {"$type": types}}));
        }
        doc! {"$or": or}
    }

    /// The `_id` range of partition `p`: split at the `_id`s found at positions k·n/N of
    /// the `_id` order (n the estimated count), so every partition computes the same
    /// split points from the same data.
    pub(super) fn partition_range(
        &self,
        name: &str,
        p: Partition,
    ) -> Result<(Bound, Bound), SourceError> {
        let coll = self.db.collection::<RawDocumentBuf>(name);
        let n = with_retries(&self.options, || coll.estimated_document_count().run())
            .map_err(|e| err(&self.uri, &format!("count {name}"), e))?;
        let at = |k: u32| -> Result<Bound, SourceError> {
            if k == 0 {
                return Ok(Bound::Min);
            }
            if k == p.count {
                return Ok(Bound::Max);
            }
            let skip = (n as u128 * k as u128 / p.count as u128) as u64;
            let found = with_retries(&self.options, || {
                coll.find_one(doc! {})
                    .sort(doc! {"_id": 1})
                    .skip(skip)
                    .projection(doc! {"_id": 1})
                    .run()
            })
            .map_err(|e| err(&self.uri, &format!("split points of {name}"), e))?;
            let Some(raw) = found else {
                return Ok(Bound::Max);
            };
            let v = crate::value::from_bson(raw.as_bytes())
                .map_err(|e| err(&self.uri, &format!("split points of {name}"), e))?;
            Ok(v.value.get("_id").cloned().map_or(Bound::Max, Bound::At))
        };
        Ok((at(p.index)?, at(p.index + 1)?))
    }

    /// Where the reads were done (report.json's `read`): the read preference and concern,
    /// and per server that answered a `find`/`getMore` its address, its role
    /// (`primary`, `secondary`, `standalone`, `mongos`, from `hello`), its replica set and
    /// its replication lag in seconds behind the primary: from `replSetGetStatus` (the
    /// members' `optimeDate`) when the user may run it, else from `hello`'s
    /// `lastWrite.lastWriteDate` of that server and of the primary; `null` when there is no
    /// replica set (a standalone server, FerretDB) or neither answer gives it. When no
    /// read was answered (no collection), the server the read preference selects now.
    pub fn read_location(&self) -> serde_json::Value {
        let mut hosts: Vec<String> = self
            .served
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if hosts.is_empty() {
            if let Some(h) = self.hello(self.selection.clone()) {
                if let Some(me) = h.get_str("me").ok().map(str::to_string) {
                    hosts.push(me);
                }
            }
        }
        let status = self.repl_status();
        let primary = self
            .hello(SelectionCriteria::ReadPreference(ReadPreference::Primary))
            .filter(|h| h.get_bool("isWritablePrimary").unwrap_or(false));
        let servers: Vec<serde_json::Value> = hosts
            .iter()
            .map(|host| self.server_location(host, status.as_ref(), primary.as_ref()))
            .collect();
        let pref = match &self.selection {
            SelectionCriteria::ReadPreference(p) => read_preference_name(p),
            _ => "custom".to_string(),
        };
        serde_json::json!({
            "read_preference": pref,
            "servers": servers,
        })
    }

    fn server_location(
        &self,
        host: &str,
        status: Option<&Document>,
        primary: Option<&Document>,
    ) -> serde_json::Value {
        let target = host.to_string();
        let hello = self.hello(SelectionCriteria::Predicate(std::sync::Arc::new(
            move |s: &mongodb::ServerInfo| s.address().to_string() == target,
        )));
        let set = hello
            .as_ref()
            .and_then(|h| h.get_str("setName").ok())
            .map(str::to_string);
        let flag = |k: &str| {
            hello
                .as_ref()
                .is_some_and(|h| h.get_bool(k).unwrap_or(false))
        };
        let role = if hello
            .as_ref()
            .is_some_and(|h| h.get_str("msg").ok() == Some("isdbgrid"))
        {
            "mongos"
        } else if set.is_none() {
            "standalone"
        } else if flag("isWritablePrimary") {
            "primary"
        } else if flag("secondary") {
            "secondary"
        } else {
            "other"
        };
        let (lag, from) = if set.is_none() {
            (None, None)
        } else if role == "primary" {
            (Some(0.0), Some("primary"))
        } else if let Some(l) = status.and_then(|s| status_lag(s, host)) {
            (Some(l), Some("replSetGetStatus"))
        } else {
            let date = |h: &Document| {
                h.get_document("lastWrite")
                    .ok()?
                    .get_datetime("lastWriteDate")
                    .ok()
                    .map(|d| d.timestamp_millis())
            };
            match (hello.as_ref().and_then(date), primary.and_then(date)) {
                (Some(mine), Some(theirs)) => (
                    Some((theirs - mine).max(0) as f64 / 1000.0),
                    Some("hello lastWriteDate"),
                ),
                _ => (None, None),
            }
        };
        serde_json::json!({
            "host": host,
            "role": role,
            "replica_set": set,
            "lag_seconds": lag,
            "lag_from": from,
        })
    }

    /// `hello` on the server `criteria` selects (`None` when it cannot be run).
    fn hello(&self, criteria: SelectionCriteria) -> Option<Document> {
        let admin = self.client.database("admin");
        admin
            .run_command(doc! {"hello": 1})
            .selection_criteria(criteria.clone())
            .run()
            .or_else(|_| {
                admin
                    .run_command(doc! {"isMaster": 1})
                    .selection_criteria(criteria)
                    .run()
            })
            .ok()
    }

    /// `replSetGetStatus` (`None` when not a replica set or not permitted).
    fn repl_status(&self) -> Option<Document> {
        self.client
            .database("admin")
            .run_command(doc! {"replSetGetStatus": 1})
            .selection_criteria(SelectionCriteria::ReadPreference(
                ReadPreference::PrimaryPreferred {
                    options: Default::default(),
                },
            ))
            .run()
            .ok()
    }

    /// The `--query` collection `name` is read with, if any.
    pub fn query_of(&self, name: &str) -> Option<&super::Query> {
        self.options.query.as_ref().filter(|q| q.collection == name)
    }

    pub(super) fn estimated_count(&self, name: &str) -> u64 {
        self.db
            .collection::<Document>(name)
            .estimated_document_count()
            .run()
            .unwrap_or(0)
    }
}

/// The lag of member `host` behind the primary in a `replSetGetStatus` answer, in seconds.
fn status_lag(status: &Document, host: &str) -> Option<f64> {
    let members = status.get_array("members").ok()?;
    let optime = |m: &Document| {
        m.get_datetime("optimeDate")
            .ok()
            .map(|d| d.timestamp_millis())
    };
    let mut primary = None;
    let mut mine = None;
    for m in members.iter().filter_map(Bson::as_document) {
        if m.get_str("stateStr").ok() == Some("PRIMARY") {
            primary = optime(m);
        }
        if m.get_str("name").ok() == Some(host) {
            mine = optime(m);
        }
    }
    Some((primary? - mine?).max(0) as f64 / 1000.0)
}

/// A read preference as its mode is spelt (with maxStalenessSeconds when set).
fn read_preference_name(p: &ReadPreference) -> String {
    let (mode, options) = match p {
        ReadPreference::Primary => return "primary".into(),
        ReadPreference::PrimaryPreferred { options } => ("primaryPreferred", options),
        ReadPreference::Secondary { options } => ("secondary", options),
        ReadPreference::SecondaryPreferred { options } => ("secondaryPreferred", options),
        ReadPreference::Nearest { options } => ("nearest", options),
        _ => return format!("{p:?}"),
    };
    match options.as_ref().and_then(|o| o.max_staleness) {
        Some(d) => format!("{mode} (maxStalenessSeconds {})", d.as_secs()),
        None => mode.to_string(),
    }
}

struct LiveReader {
    live: Live,
    coll: Collection<RawDocumentBuf>,
    /// The partition's `_id` range (an empty filter for the whole collection).
    range: Document,
    cursor: Option<Cursor<RawDocumentBuf>>,
    /// The `_id` of the last document handed out: a resumed scan starts after it.
    last_id: Option<Bson>,
    read: u64,
    failures: u32,
    done: bool,
}

/// BSON type codes (for `$type`) in MongoDB's comparison order, bracket by bracket, used
/// to resume a scan whose `_id`s mix types: `$gt` only compares within one type bracket.
/// Numeric codes rather than aliases: FerretDB does not know every alias (`maxKey`).
const ORDER: [&[i32]; 11] = [
    &[-1],            // minKey
    &[10, 6],         // null, undefined
    &[16, 18, 1, 19], // int, long, double, decimal
    &[2, 14],         // string, symbol
    &[3],             // object
    &[4],             // array
    &[5],             // binData
    &[7],             // objectId
    &[8],             // bool
    &[9],             // date
    &[17, 11, 127],   // timestamp, regex, maxKey
];

/// Type codes FerretDB rejects in `$type` (it cannot store such values either): minKey,
/// maxKey, the deprecated undefined and symbol, and decimal.
const FERRETDB_UNKNOWN_TYPES: [i32; 5] = [-1, 127, 6, 14, 19];

/// The comparison bracket of an `_id` (an index into [`ORDER`]).
fn bracket(id: &Bson) -> usize {
    match id {
        Bson::MinKey => 0,
        Bson::Null | Bson::Undefined => 1,
        Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_) | Bson::Decimal128(_) => 2,
        Bson::String(_) | Bson::Symbol(_) => 3,
        Bson::Document(_) => 4,
        Bson::Array(_) => 5,
        Bson::Binary(_) => 6,
        Bson::ObjectId(_) => 7,
        Bson::Boolean(_) => 8,
        Bson::DateTime(_) => 9,
        _ => 10,
    }
}

/// Type codes of the brackets after `id`'s.
fn later_types(id: &Bson) -> Vec<i32> {
    ORDER[bracket(id) + 1..]
        .iter()
        .flat_map(|b| b.iter().copied())
        .collect()
}

/// Type codes of the brackets before `id`'s.
fn earlier_types(id: &Bson) -> Vec<i32> {
    ORDER[..bracket(id)]
        .iter()
        .flat_map(|b| b.iter().copied())
        .collect()
}

/// A relaxed Extended JSON `_id` back as BSON.
fn bson_of(v: &serde_json::Value) -> Result<Bson, SourceError> {
    let bytes = crate::value::to_bson(&serde_json::json!({ "_id": v }))
        .map_err(|e| SourceError::Other(format!("cannot use _id {v} as a bound: {e}")))?;
    let doc = bson::RawDocument::from_bytes(&bytes)
        .map_err(|e| SourceError::Other(format!("cannot use _id {v} as a bound: {e}")))?;
    let raw = doc
        .get("_id")
        .ok()
        .flatten()
        .ok_or_else(|| SourceError::Other(format!("cannot use _id {v} as a bound")))?;
    Bson::try_from(raw)
        .map_err(|e| SourceError::Other(format!("cannot use _id {v} as a bound: {e}")))
}

impl LiveReader {
    fn open_cursor(&mut self) -> Result<(), SourceError> {
        let after = match &self.last_id {
            None => doc! {},
            Some(id) => {
                let mut later = later_types(id);
                if self.live.ferretdb {
                    later.retain(|t| !FERRETDB_UNKNOWN_TYPES.contains(t));
                }
                let mut or = vec![Bson::Document(doc! {"_id": {"$gt": id.clone()}})];
                if !later.is_empty() {
                    or.push(Bson::Document(doc! {"_id": {"$type": later}}));
                }
                doc! {"$or": or}
            }
        };
        let filter = match (self.range.is_empty(), after.is_empty()) {
            (true, _) => after,
            (false, true) => self.range.clone(),
            (false, false) => doc! {"$and": [self.range.clone(), after]},
        };
        let o = self.live.options.clone();
        let coll = &self.coll;
        let cursor = with_retries(&o, || {
            let mut find = coll
                .find(filter.clone())
                .sort(doc! {"_id": 1})
                .batch_size(o.batch_size);
            if let Some(t) = o.max_time {
                find = find.max_time(t);
            }
            find.run()
        })
        .map_err(|e| err(&self.live.uri, &format!("find on {}", self.coll.name()), e))?;
        self.cursor = Some(cursor);
        Ok(())
    }
}

impl RecordReader for LiveReader {
    fn encoding(&self) -> Encoding {
        Encoding::Bson
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Batch>, SourceError> {
        let mut batch = Batch::with_capacity();
        while !self.done
            && batch.data.len() < BATCH_BYTES
            && batch.records.len() < max_records.max(1)
        {
            let Some(cursor) = self.cursor.as_mut() else {
                self.open_cursor()?;
                continue;
            };
            match cursor.next() {
                None => self.done = true,
                Some(Ok(raw)) => {
                    self.failures = 0;
                    if let Ok(Some(id)) = raw.get("_id") {
                        if let Ok(owned) = Bson::try_from(id) {
                            self.last_id = Some(owned);
                        }
                    }
                    let start = batch.data.len();
                    batch.data.extend_from_slice(raw.as_bytes());
                    batch.records.push(Record {
                        start,
                        end: batch.data.len(),
                        location: Location::Live { index: self.read },
                        broken: None,
                    });
                    self.read += 1;
                }
                Some(Err(e)) => {
                    self.cursor = None;
                    self.failures += 1;
                    if !transient(&e) || self.failures > self.live.options.retries {
                        return Err(err(
                            &self.live.uri,
                            &format!(
                                "reading {} failed after {} document(s) and {} attempt(s)",
                                self.coll.name(),
                                self.read,
                                self.failures
                            ),
                            e,
                        ));
                    }
                    let wait = self.live.options.backoff * 2u32.saturating_pow(self.failures - 1);
                    std::thread::sleep(wait.min(Duration::from_secs(10)));
                }
            }
        }
        Ok((!batch.records.is_empty()).then_some(batch))
    }

    fn position(&self) -> u64 {
        self.read
    }
}

impl Live {
    /// A collection's `options` from `listCollections` (validator, validationLevel,
    /// validationAction, …) as relaxed Extended JSON; `None` when the database has no
    /// collection of that name.
    pub fn collection_options(&self, name: &str) -> Result<Option<serde_json::Value>, SourceError> {
        let context = format!("listCollections {name}");
        let cursor = with_retries(&self.options, || {
            self.db
                .run_cursor_command(doc! {"listCollections": 1, "filter": {"name": name}})
                .run()
        })
        .map_err(|e| err(&self.uri, &context, e))?;
        for d in cursor {
            let d: Document = d.map_err(|e| err(&self.uri, &context, e))?;
            if d.get_str("name").ok() != Some(name) {
                continue;
            }
            let options = d.get_document("options").cloned().unwrap_or_default();
            let bytes = options.to_vec().map_err(|e| err(&self.uri, &context, e))?;
            let v = crate::value::from_bson(&bytes).map_err(|e| err(&self.uri, &context, e))?;
            return Ok(Some(v.value));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_filters_cover_later_type_brackets() {
        assert_eq!(later_types(&Bson::MaxKey), Vec::<i32>::new());
        let after_numbers = later_types(&Bson::Int32(5));
        assert!(
            after_numbers.contains(&2) && after_numbers.contains(&7),
            "string, objectId"
        );
        assert!(!after_numbers.contains(&16), "not int");
        let after_oid = later_types(&Bson::ObjectId(bson::oid::ObjectId::new()));
        assert_eq!(after_oid, [8, 9, 17, 11, 127]);
    }

    #[test]
    fn driver_errors_never_show_the_password() {
        let e = err(
            "mongodb://u:s3cr%2Ft@h/db",
            "ctx",
            "auth failed for u:s3cr%2Ft",
        );
        assert!(!e.to_string().contains("s3cr"), "{e}");
    }
}
