//! Generates the `shop` example dataset: a baseline dump (all documents valid v1), the
//! current state after a partially rolled-back v1→v2 migration (as a mongodump directory,
//! a gzipped dump, NDJSON exports in relaxed and canonical Extended JSON and `--jsonArray`
//! exports) and `expected.json` with every planted number.
//!
//! Run from the repository root:
//!
//! ```text
//! cargo run --example gen_shop -- --out examples/shop/data [--scale N] [--seed S] [--clean]
//!     [--findings-share P]
//! ```
//!
//! Output is a pure function of `--seed`, `--scale`, `--clean` and `--findings-share`: no
//! clock, no random ObjectIds (they are built from counters), so two runs are byte-identical.
//!
//! Without `--clean`, about 5 % of the documents have a finding a check reports without a
//! baseline (another version, invalid, an orphan reference, a duplicate key, a structural
//! problem). `--findings-share P` (a fraction, e.g. 0.25) multiplies those plants — other
//! versions, invalid documents, orphans and the customers they point to, duplicate-email
//! groups — by the smallest factor (in steps of 1/1000) that makes at least P of the
//! documents have one; the plants found only against the baseline (reordered, status
//! changed, deleted, added) keep their default counts. Without the option the output is
//! the default dataset, unchanged.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

type Res<T> = Result<T, Box<dyn Error>>;

const DB: &str = "shop";
/// 2023-01-01T00:00:00Z: customers sign up during 2023.
const CUSTOMERS_FROM_MS: i64 = 1_672_531_200_000;
/// 2024-01-01T00:00:00Z: orders placed in the first half of 2024.
const ORDERS_FROM_MS: i64 = 1_704_067_200_000;
/// 2024-07-01T00:00:00Z: the baseline dump was taken here; later documents are `added`.
const BASELINE_MS: i64 = 1_719_792_000_000;
const DAY_MS: i64 = 86_400_000;
/// Depth of the planted deep document: top-level document = 1, each nested
/// document or array adds 1.
const DEEP_DEPTH: usize = 105;

const FIRST: &[&str] = &[
    "Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
    "Kaori", "Luca", "Maya", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara",
];
const LAST: &[&str] = &[
    "Almeida",
    "Berg",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Novak",
    "Okafor",
    "Petrov",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Weber",
];
const STATUSES: &[&str] = &["new", "paid", "shipped", "cancelled"];

// ---------------------------------------------------------------- arguments

struct Args {
    out: PathBuf,
    scale: usize,
    clean: bool,
    seed: u64,
    findings_share: Option<f64>,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shop/data"),
        scale: 1,
        clean: false,
        seed: 42,
        findings_share: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--out" => args.out = PathBuf::from(value("--out")?),
            "--scale" => {
                args.scale = value("--scale")?
                    .parse()
                    .map_err(|e| format!("--scale: {e}"))?;
                if args.scale == 0 {
                    return Err("--scale must be at least 1".into());
                }
            }
            "--seed" => {
                args.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?;
            }
            "--clean" => args.clean = true,
            "--findings-share" => {
                let p: f64 = value("--findings-share")?
                    .parse()
                    .map_err(|e| format!("--findings-share: {e}"))?;
                if !(p > 0.0 && p < 1.0) {
                    return Err("--findings-share must be a fraction between 0 and 1".into());
                }
                args.findings_share = Some(p);
            }
            "-h" | "--help" => {
                println!(
                    "usage: gen_shop [--out DIR] [--scale N] [--seed S] [--clean] [--findings-share P]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}` (try --help)").into()),
        }
    }
    if args.clean && args.findings_share.is_some() {
        return Err("--findings-share plants findings: it cannot be combined with --clean".into());
    }
    Ok(args)
}

// ---------------------------------------------------------------- PRNG (splitmix64)

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range_i64(&mut self, n: i64) -> i64 {
        (self.next() % n as u64) as i64
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

/// ObjectId = 4-byte seconds of `created_at` + 5 fixed bytes naming the collection + 3-byte counter.
fn oid(created_ms: i64, tag: u8, counter: usize) -> ObjectId {
    let secs = (created_ms / 1000) as u32;
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&secs.to_be_bytes());
    b[4..9].copy_from_slice(&[0x5d, 0x0c, 0x5e, 0x00, tag]);
    let c = (counter as u32).to_be_bytes();
    b[9..].copy_from_slice(&c[1..]);
    ObjectId::from_bytes(b)
}

// ---------------------------------------------------------------- model

struct Customer {
    id: ObjectId,
    email: String,
    first: String,
    last: String,
    created_ms: i64,
}

impl Customer {
    fn v1(&self) -> Document {
        let mut d = Document::new();
        d.insert("_id", self.id);
        d.insert("email", self.email.clone());
        d.insert("name", format!("{} {}", self.first, self.last));
        d.insert("created_at", DateTime::from_millis(self.created_ms));
        d
    }
    fn v2(&self) -> Document {
        let mut name = Document::new();
        name.insert("first", self.first.clone());
        name.insert("last", self.last.clone());
        let mut d = Document::new();
        d.insert("_id", self.id);
        d.insert("email", self.email.clone());
        d.insert("name", name);
        d.insert("created_at", DateTime::from_millis(self.created_ms));
        d
    }
    /// Same content as v1, fields in another order.
    fn v1_reordered(&self) -> Document {
        let mut d = Document::new();
        d.insert("_id", self.id);
        d.insert("name", format!("{} {}", self.first, self.last));
        d.insert("email", self.email.clone());
        d.insert("created_at", DateTime::from_millis(self.created_ms));
        d
    }
}

#[derive(Clone)]
struct Item {
    sku: String,
    qty: i32,
    cents: i64,
}

#[derive(Clone)]
struct Order {
    id: ObjectId,
    customer: usize,
    status: &'static str,
    currency: &'static str,
    created_ms: i64,
    items: Vec<Item>,
}

impl Order {
    fn total_cents(&self) -> i64 {
        self.items.iter().map(|i| i64::from(i.qty) * i.cents).sum()
    }
    fn items_bson(&self) -> Bson {
        Bson::Array(
            self.items
                .iter()
                .map(|i| {
                    let mut d = Document::new();
                    d.insert("sku", i.sku.clone());
                    d.insert("qty", i.qty);
                    d.insert("price", i.cents as f64 / 100.0);
                    Bson::Document(d)
                })
                .collect(),
        )
    }
    fn v1(&self, customers: &[Customer]) -> Document {
        let mut d = Document::new();
        d.insert("_id", self.id);
        d.insert("customer_id", customers[self.customer].id);
        d.insert("status", self.status);
        d.insert("total", self.total_cents() as f64 / 100.0);
        d.insert("currency", self.currency);
        d.insert("created_at", DateTime::from_millis(self.created_ms));
        d.insert("items", self.items_bson());
        d
    }
    fn v1_reordered(&self, customers: &[Customer]) -> Document {
        let mut d = Document::new();
        d.insert("_id", self.id);
        d.insert("created_at", DateTime::from_millis(self.created_ms));
        d.insert("customer_id", customers[self.customer].id);
        d.insert("status", self.status);
        d.insert("currency", self.currency);
        d.insert("total", self.total_cents() as f64 / 100.0);
        d.insert("items", self.items_bson());
        d
    }
    fn v2(&self, customers: &[Customer]) -> Document {
        let c = &customers[self.customer];
        let mut cust = Document::new();
        cust.insert("id", c.id);
        cust.insert("email", c.email.clone());
        let mut d = Document::new();
        d.insert("_id", self.id);
        d.insert("customer", cust);
        d.insert("status", self.status);
        d.insert("total_cents", self.total_cents());
        d.insert("currency", self.currency);
        d.insert("created_at", DateTime::from_millis(self.created_ms));
        d.insert("items", self.items_bson());
        d
    }
    /// Rollback stopped half-way: `customer_id` is back, `total` is not.
    fn half_reverted(&self, customers: &[Customer]) -> Document {
        let mut d = Document::new();
        d.insert("_id", self.id);
        d.insert("customer_id", customers[self.customer].id);
        d.insert("status", self.status);
        d.insert("total_cents", self.total_cents());
        d.insert("currency", self.currency);
        d.insert("created_at", DateTime::from_millis(self.created_ms));
        d.insert("items", self.items_bson());
        d
    }
}

fn sku_price_cents(sku: usize) -> i64 {
    // Every 7th product has a whole price so that integral doubles (10.0) occur.
    if sku.is_multiple_of(7) {
        (5 + (sku % 40) as i64) * 100
    } else {
        199 + ((sku * 7919) % 9800) as i64
    }
}

fn make_order(rng: &mut Rng, id: ObjectId, customer: usize, created_ms: i64) -> Order {
    let n = 1 + rng.below(4);
    let items = (0..n)
        .map(|_| {
            let sku = rng.below(240);
            Item {
                sku: format!("SKU-{:05}", 10_000 + sku),
                qty: 1 + rng.below(3) as i32,
                cents: sku_price_cents(sku),
            }
        })
        .collect();
    Order {
        id,
        customer,
        status: rng.pick(STATUSES),
        currency: if rng.below(3) == 0 { "USD" } else { "EUR" },
        created_ms,
        items,
    }
}

// ---------------------------------------------------------------- Extended JSON writer

fn push_json_str(out: &mut String, s: &str) -> Res<()> {
    out.push_str(&serde_json::to_string(s)?);
    Ok(())
}

/// Proleptic Gregorian date from days since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `2024-01-01T00:00:00Z`, or `…00.123Z` when the milliseconds are not zero.
fn iso_millis(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    if milli == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
    }
}

fn double_repr(v: f64) -> Option<String> {
    if !v.is_finite() {
        None
    } else {
        // `{:?}` is the shortest round-trip form and keeps `.0` on integral values.
        Some(format!("{v:?}"))
    }
}

/// Writes `b` as Extended JSON v2 the way mongoexport does (relaxed or canonical).
fn ejson(b: &Bson, canonical: bool, out: &mut String) -> Res<()> {
    match b {
        Bson::Document(d) => ejson_doc(d, canonical, out)?,
        Bson::Array(a) => {
            out.push('[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ejson(v, canonical, out)?;
            }
            out.push(']');
        }
        Bson::String(s) => push_json_str(out, s)?,
        Bson::Boolean(v) => out.push_str(if *v { "true" } else { "false" }),
        Bson::Null => out.push_str("null"),
        Bson::Int32(v) if canonical => write!(out, "{{\"$numberInt\":\"{v}\"}}")?,
        Bson::Int32(v) => write!(out, "{v}")?,
        Bson::Int64(v) if canonical => write!(out, "{{\"$numberLong\":\"{v}\"}}")?,
        Bson::Int64(v) => write!(out, "{v}")?,
        Bson::Double(v) => match double_repr(*v) {
            Some(r) if !canonical => out.push_str(&r),
            Some(r) => write!(out, "{{\"$numberDouble\":\"{r}\"}}")?,
            None => {
                let s = if v.is_nan() {
                    "NaN"
                } else if *v > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                };
                write!(out, "{{\"$numberDouble\":\"{s}\"}}")?;
            }
        },
        Bson::ObjectId(o) => write!(out, "{{\"$oid\":\"{}\"}}", o.to_hex())?,
        Bson::DateTime(dt) => {
            let ms = dt.timestamp_millis();
            if !canonical && (0..253_402_300_800_000).contains(&ms) {
                write!(out, "{{\"$date\":\"{}\"}}", iso_millis(ms))?;
            } else {
                write!(out, "{{\"$date\":{{\"$numberLong\":\"{ms}\"}}}}")?;
            }
        }
        Bson::Decimal128(d) => write!(out, "{{\"$numberDecimal\":\"{d}\"}}")?,
        other => return Err(format!("generator does not emit {:?}", other.element_type()).into()),
    }
    Ok(())
}

fn ejson_doc(d: &Document, canonical: bool, out: &mut String) -> Res<()> {
    out.push('{');
    for (i, (k, v)) in d.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, k)?;
        out.push(':');
        ejson(v, canonical, out)?;
    }
    out.push('}');
    Ok(())
}

fn ejson_line(d: &Document, canonical: bool) -> Res<String> {
    let mut s = String::new();
    ejson_doc(d, canonical, &mut s)?;
    Ok(s)
}

// ---------------------------------------------------------------- writers

fn write_file(path: &Path, bytes: &[u8]) -> Res<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    fs::write(path, bytes).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(())
}

fn gzip(bytes: &[u8]) -> Res<Vec<u8>> {
    // GzEncoder writes mtime 0 and no file name: the output is deterministic.
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

struct IndexSpec {
    key: Vec<(&'static str, i32)>,
    unique: bool,
}

impl IndexSpec {
    fn new(key: &[(&'static str, i32)], unique: bool) -> Self {
        IndexSpec {
            key: key.to_vec(),
            unique,
        }
    }
    fn name(&self) -> String {
        self.key
            .iter()
            .map(|(f, d)| format!("{f}_{d}"))
            .collect::<Vec<_>>()
            .join("_")
    }
}

/// `<coll>.metadata.json` as mongodump 100.x writes it: one line of canonical EJSON.
fn metadata_json(coll: &str, uuid: &str, indexes: &[IndexSpec]) -> Res<String> {
    let mut s = String::from("{\"indexes\":[");
    let id = IndexSpec::new(&[("_id", 1)], false);
    for (i, ix) in std::iter::once(&id).chain(indexes).enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"v\":{\"$numberInt\":\"2\"},");
        if ix.unique {
            s.push_str("\"unique\":true,");
        }
        s.push_str("\"key\":{");
        for (j, (f, d)) in ix.key.iter().enumerate() {
            if j > 0 {
                s.push(',');
            }
            push_json_str(&mut s, f)?;
            write!(s, ":{{\"$numberInt\":\"{d}\"}}")?;
        }
        s.push_str("},\"name\":");
        let name = if ix.key == [("_id", 1)] {
            "_id_".to_string()
        } else {
            ix.name()
        };
        push_json_str(&mut s, &name)?;
        s.push('}');
    }
    s.push_str("],\"uuid\":");
    push_json_str(&mut s, uuid)?;
    s.push_str(",\"collectionName\":");
    push_json_str(&mut s, coll)?;
    s.push_str(",\"type\":\"collection\"}");
    Ok(s)
}

fn uuid_hex(seed: u64, coll: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in coll.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut r = Rng(seed ^ h);
    format!("{:016x}{:016x}", r.next(), r.next())
}

struct Collection<'a> {
    name: &'static str,
    docs: &'a [Document],
    indexes: Vec<IndexSpec>,
    /// Bytes appended to the `.bson` file (a truncated record), if any.
    bson_tail: Option<Vec<u8>>,
    /// (position, relaxed line, canonical line) of a broken NDJSON line, if any.
    broken_line: Option<(usize, String, String)>,
}

fn bson_bytes(docs: &[Document], tail: Option<&[u8]>) -> Res<Vec<u8>> {
    let mut buf = Vec::new();
    for d in docs {
        d.to_writer(&mut buf)?;
    }
    if let Some(t) = tail {
        buf.extend_from_slice(t);
    }
    Ok(buf)
}

fn write_dump(root: &Path, c: &Collection, seed: u64, gz_root: Option<&Path>) -> Res<()> {
    let bson = bson_bytes(c.docs, c.bson_tail.as_deref())?;
    let meta = metadata_json(c.name, &uuid_hex(seed, c.name), &c.indexes)?;
    let dir = root.join(DB);
    write_file(&dir.join(format!("{}.bson", c.name)), &bson)?;
    write_file(
        &dir.join(format!("{}.metadata.json", c.name)),
        meta.as_bytes(),
    )?;
    if let Some(gz) = gz_root {
        let dir = gz.join(DB);
        write_file(&dir.join(format!("{}.bson.gz", c.name)), &gzip(&bson)?)?;
        write_file(
            &dir.join(format!("{}.metadata.json.gz", c.name)),
            &gzip(meta.as_bytes())?,
        )?;
    }
    Ok(())
}

fn write_exports(out: &Path, c: &Collection) -> Res<()> {
    for (dir, canonical) in [("export", false), ("export-canonical", true)] {
        let mut s = String::new();
        for (i, d) in c.docs.iter().enumerate() {
            if let Some((pos, relaxed, canon)) = &c.broken_line {
                if *pos == i {
                    s.push_str(if canonical { canon } else { relaxed });
                    s.push('\n');
                }
            }
            s.push_str(&ejson_line(d, canonical)?);
            s.push('\n');
        }
        write_file(
            &out.join(dir).join(format!("{}.json", c.name)),
            s.as_bytes(),
        )?;
    }
    // mongoexport --jsonArray: `[doc,doc,…]` on one line. A broken element cannot be
    // represented inside a well-formed array, so it is left out there.
    let mut s = String::from("[");
    for (i, d) in c.docs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&ejson_line(d, false)?);
    }
    s.push(']');
    write_file(
        &out.join("export-array").join(format!("{}.json", c.name)),
        s.as_bytes(),
    )?;
    Ok(())
}

// ---------------------------------------------------------------- the story

struct Plan {
    baseline_customers: Vec<Document>,
    baseline_orders: Vec<Document>,
    customers: Vec<Document>,
    orders: Vec<Document>,
    orders_tail: Option<Vec<u8>>,
    orders_broken: Option<(usize, String, String)>,
    expected: Value,
    /// (documents with a finding a check reports without a baseline, documents).
    findings: (usize, usize),
}

/// The planted counts that a check reports without a baseline, for `scale` and a multiplier in
/// thousandths (1000: the default dataset, every count `per_unit * scale`).
#[derive(Clone, Copy)]
struct Plants {
    c_deleted: usize,
    c_v2: usize,
    g2: usize,
    g3: usize,
    o_v2: usize,
    o_v2_orphan: usize,
    o_half: usize,
    o_wrong: usize,
    o_v1_orphan: usize,
}

impl Plants {
    fn new(scale: usize, permille: usize) -> Self {
        let n = |per_unit: usize| per_unit * scale * permille / 1000;
        Plants {
            c_deleted: n(4),
            c_v2: n(12),
            g2: n(3),
            g3: n(2),
            o_v2: n(40),
            o_v2_orphan: n(5),
            o_half: n(15),
            o_wrong: n(8),
            o_v1_orphan: n(6),
        }
    }

    /// (documents with a finding, documents) of the current state; see `build` for the
    /// counts that do not scale with the multiplier.
    fn share(&self, scale: usize) -> (usize, usize) {
        let s = scale;
        // Orders: the deep one, the one without `_id` and the duplicate `_id` copy are
        // findings too; o_added + 2 documents are added (one without `_id`, one copy).
        let o_docs = 1500 * s - 20 * s + 30 * s + 2;
        let o_find = self.o_v2 + self.o_half + self.o_wrong + 1 + self.o_v1_orphan + 2;
        let c_docs = 300 * s - self.c_deleted + 10 * s + self.g2 + 2 * self.g3;
        let c_find = self.c_v2 + 2 * self.g2 + 3 * self.g3;
        (o_find + c_find, o_docs + c_docs)
    }

    /// Roles taken from the permutations must fit in them.
    fn fits(&self, scale: usize) -> bool {
        let s = scale;
        let c_roles = self.c_deleted + self.c_v2 + 5 * s + self.g2 + self.g3;
        let o_roles =
            self.o_v2 + self.o_half + self.o_wrong + self.o_v1_orphan + (20 + 10 + 25) * s + 1;
        c_roles <= 300 * s
            && o_roles <= 1500 * s
            && self.o_v2_orphan <= self.o_v2
            && self.c_deleted > 0
    }

    /// The smallest multiplier (in thousandths, at least 1000) giving at least `share` of
    /// the documents a finding.
    fn for_share(scale: usize, share: f64) -> Res<Self> {
        let mut permille = 1000;
        loop {
            let p = Plants::new(scale, permille);
            if !p.fits(scale) {
                return Err(format!(
                    "--findings-share {share} is more than this dataset can plant"
                )
                .into());
            }
            let (find, docs) = p.share(scale);
            if find as f64 >= share * docs as f64 {
                return Ok(p);
            }
            permille += 1;
        }
    }
}

fn build(seed: u64, scale: usize, clean: bool, findings_share: Option<f64>) -> Res<Plan> {
    let s = scale;
    let mut rng = Rng(seed);
    let plants = match findings_share {
        Some(p) => Plants::for_share(scale, p)?,
        None => Plants::new(scale, 1000),
    };
    let Plants {
        c_deleted,
        c_v2,
        g2,
        g3,
        o_v2,
        o_v2_orphan,
        o_half,
        o_wrong,
        o_v1_orphan,
    } = plants;

    // ---- customers (baseline)
    let n_customers = 300 * s;
    let mut created: Vec<i64> = (0..n_customers)
        .map(|_| CUSTOMERS_FROM_MS + rng.range_i64(365 * DAY_MS / 1000) * 1000)
        .collect();
    created.sort_unstable();
    let mut customers: Vec<Customer> = created
        .iter()
        .enumerate()
        .map(|(i, &ms)| {
            let first = rng.pick(FIRST).to_string();
            let last = rng.pick(LAST).to_string();
            Customer {
                id: oid(ms, 0xc1, i),
                email: format!(
                    "{}.{}{}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase(),
                    i
                ),
                first,
                last,
                created_ms: ms,
            }
        })
        .collect();

    // Customer roles, from a seeded permutation.
    // c_deleted: their orders become the planted orphans; g2, g3: duplicate-email groups
    // of 2 and of 3 (see `Plants`).
    let c_reordered = 5 * s;
    let c_added_valid = 10 * s;
    let mut perm: Vec<usize> = (0..n_customers).collect();
    rng.shuffle(&mut perm);
    let mut take = {
        let mut at = 0;
        move |n: usize| {
            let r = perm[at..at + n].to_vec();
            at += n;
            r
        }
    };
    let deleted = take(c_deleted);
    let cv2 = take(c_v2);
    let creord = take(c_reordered);
    let dup_orig = take(g2 + g3);
    // Role of each baseline customer (the lists are disjoint); looked up per document.
    const C_DELETED: u8 = 1;
    const C_V2: u8 = 2;
    const C_REORDERED: u8 = 3;
    let mut crole = vec![0u8; n_customers];
    for (list, role) in [(&deleted, C_DELETED), (&cv2, C_V2), (&creord, C_REORDERED)] {
        for &i in list {
            crole[i] = role;
        }
    }
    let is_deleted = |i: usize| i < n_customers && crole[i] == C_DELETED;

    // ---- orders (baseline)
    let n_orders = 1500 * s;
    // o_v2_orphan: the first of the v2 ones (see `Plants` for the planted findings).
    let o_deleted = 20 * s;
    let o_reordered = 10 * s;
    let o_status = 25 * s;
    let o_deep = 1;
    let o_added = 30 * s;

    let mut operm: Vec<usize> = (0..n_orders).collect();
    rng.shuffle(&mut operm);
    let mut otake = {
        let mut at = 0;
        move |n: usize| {
            let r = operm[at..at + n].to_vec();
            at += n;
            r
        }
    };
    let r_v2 = otake(o_v2);
    let r_half = otake(o_half);
    let r_wrong = otake(o_wrong);
    let r_v1_orphan = otake(o_v1_orphan);
    let r_deleted = otake(o_deleted);
    let r_reordered = otake(o_reordered);
    let r_status = otake(o_status);
    let r_deep = otake(o_deep);
    let orphan_orders: Vec<usize> = r_v2[..o_v2_orphan]
        .iter()
        .chain(&r_v1_orphan)
        .copied()
        .collect();
    let mut orphan_k = vec![usize::MAX; n_orders];
    for (k, &o) in orphan_orders.iter().enumerate().rev() {
        orphan_k[o] = k;
    }
    const O_DELETED: u8 = 1;
    const O_V2: u8 = 2;
    const O_HALF: u8 = 3;
    const O_WRONG: u8 = 4;
    const O_REORDERED: u8 = 5;
    const O_STATUS: u8 = 6;
    const O_DEEP: u8 = 7;
    let mut orole = vec![0u8; n_orders];
    for (list, role) in [
        (&r_deleted, O_DELETED),
        (&r_v2, O_V2),
        (&r_half, O_HALF),
        (&r_wrong, O_WRONG),
        (&r_reordered, O_REORDERED),
        (&r_status, O_STATUS),
        (&r_deep, O_DEEP),
    ] {
        for &i in list {
            orole[i] = role;
        }
    }

    let live_customers: Vec<usize> = (0..n_customers).filter(|&i| !is_deleted(i)).collect();
    let mut ocreated: Vec<i64> = (0..n_orders)
        .map(|_| ORDERS_FROM_MS + rng.range_i64(182 * DAY_MS))
        .collect();
    ocreated.sort_unstable();
    let mut orders: Vec<Order> = Vec::with_capacity(n_orders);
    for (i, &ms) in ocreated.iter().enumerate() {
        let cust = if clean {
            rng.below(n_customers)
        } else if orphan_k[i] != usize::MAX {
            deleted[orphan_k[i] % deleted.len()]
        } else {
            live_customers[rng.below(live_customers.len())]
        };
        orders.push(make_order(&mut rng, oid(ms, 0x0d, i), cust, ms));
    }

    let baseline_customers: Vec<Document> = customers.iter().map(Customer::v1).collect();
    let baseline_orders: Vec<Document> = orders.iter().map(|o| o.v1(&customers)).collect();

    let zero_structure = json!({"missing_id": 0, "duplicate_id": 0, "too_deep": 0, "oversize": 0});
    if clean {
        let expected = json!({
            "generator": {"seed": seed, "scale": scale, "clean": true},
            "collections": [
                {
                    "name": "orders", "target_version": 1, "documents": n_orders, "unreadable": 0,
                    "classes": {"valid": n_orders, "other_version": {}, "invalid": 0},
                    "indexes": {"missing": [], "unexpected": []},
                    "duplicates": [],
                    "references": [],
                    "structure": zero_structure.clone(),
                    "reconciliation": {"baseline_documents": n_orders, "missing": 0, "added": 0, "changed": 0, "reordered": 0}
                },
                {
                    "name": "customers", "target_version": 1, "documents": n_customers, "unreadable": 0,
                    "classes": {"valid": n_customers, "other_version": {}, "invalid": 0},
                    "indexes": {"missing": [], "unexpected": []},
                    "duplicates": [],
                    "references": [],
                    "structure": zero_structure,
                    "reconciliation": {"baseline_documents": n_customers, "missing": 0, "added": 0, "changed": 0, "reordered": 0}
                }
            ],
            "notes": [
                "Clean dataset: the current state equals the baseline; v1 indexes incl. unique email_1 are present.",
                "duplicates and references list only entries with a non-zero count, so both are empty here."
            ]
        });
        return Ok(Plan {
            customers: baseline_customers.clone(),
            orders: baseline_orders.clone(),
            baseline_customers,
            baseline_orders,
            orders_tail: None,
            orders_broken: None,
            expected,
            findings: (0, n_orders + n_customers),
        });
    }

    // ---- current customers
    let mut cur_customers = Vec::new();
    for (i, c) in customers.iter().enumerate() {
        if is_deleted(i) {
            continue;
        }
        cur_customers.push(if crole[i] == C_V2 {
            c.v2()
        } else if crole[i] == C_REORDERED {
            c.v1_reordered()
        } else {
            c.v1()
        });
    }
    // Added after the baseline: new customers, and re-registrations reusing an existing email
    // (possible because the unique email_1 index was dropped and never rebuilt).
    let mut dup_sources: Vec<usize> = Vec::new();
    for (g, &orig) in dup_orig.iter().enumerate() {
        let extra = if g < g2 { 1 } else { 2 };
        dup_sources.extend(std::iter::repeat_n(orig, extra));
    }
    let n_added_c = c_added_valid + dup_sources.len();
    let (mut new_left, mut dup_at) = (c_added_valid, 0);
    for k in 0..n_added_c {
        let next_c = n_customers + k;
        let ms = BASELINE_MS + (k as i64 + 1) * 3_600_000 + rng.range_i64(3_600) * 1000;
        let first = rng.pick(FIRST).to_string();
        let last = rng.pick(LAST).to_string();
        // Alternate new customers and re-registrations while both are left.
        let dup = dup_at < dup_sources.len() && (k % 2 == 1 || new_left == 0);
        let email = if dup {
            dup_at += 1;
            customers[dup_sources[dup_at - 1]].email.clone()
        } else {
            new_left -= 1;
            format!(
                "{}.{}{}@example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                next_c
            )
        };
        let c = Customer {
            id: oid(ms, 0xc1, next_c),
            email,
            first,
            last,
            created_ms: ms,
        };
        cur_customers.push(c.v1());
        customers.push(c);
    }
    if dup_at != dup_sources.len() || new_left != 0 {
        return Err("internal: added customers not planted as designed".into());
    }
    let c_docs = cur_customers.len();

    // ---- current orders
    let mut cur_orders = Vec::new();
    for (i, o) in orders.iter().enumerate() {
        let role = orole[i];
        if role == O_DELETED {
            continue;
        }
        let d = if role == O_V2 {
            o.v2(&customers)
        } else if role == O_HALF {
            o.half_reverted(&customers)
        } else if role == O_WRONG {
            let mut d = o.v1(&customers);
            let code = STATUSES.iter().position(|s| *s == o.status).unwrap_or(0) as i32;
            d.insert("status", code);
            d
        } else if role == O_REORDERED {
            o.v1_reordered(&customers)
        } else if role == O_STATUS {
            let mut o2 = o.clone();
            o2.status = match o.status {
                "new" => "paid",
                "paid" => "shipped",
                "shipped" => "cancelled",
                _ => "new",
            };
            o2.v1(&customers)
        } else if role == O_DEEP {
            let mut d = o.v1(&customers);
            d.insert("debug", deep_doc(DEEP_DEPTH - 1));
            d
        } else {
            o.v1(&customers)
        };
        cur_orders.push(d);
    }
    // New orders after the baseline, from customers that exist now.
    let now_customers: Vec<usize> = (0..customers.len()).filter(|&i| !is_deleted(i)).collect();
    let mut added_docs = Vec::new();
    for k in 0..o_added + 1 {
        let ms = BASELINE_MS + (k as i64) * 4 * 3_600_000 + rng.range_i64(3_600_000);
        let cust = now_customers[rng.below(now_customers.len())];
        let o = make_order(&mut rng, oid(ms, 0x0d, n_orders + k), cust, ms);
        let mut d = o.v1(&customers);
        if k == o_added / 2 {
            // The one document without `_id` (not counted as added: not comparable).
            d.remove("_id");
        }
        added_docs.push(d);
    }
    // A second document with the `_id` of an added order: an exact copy of it.
    let dup_of = added_docs[3].clone();
    added_docs.insert(o_added, dup_of);
    cur_orders.extend(added_docs);
    let o_docs = cur_orders.len();

    // Unreadable record: a deleted order cut in half (its length prefix claims the full size).
    let victim = orders[r_deleted[0]].v1(&customers);
    let mut vbytes = Vec::new();
    victim.to_writer(&mut vbytes)?;
    let tail = vbytes[..vbytes.len() / 2].to_vec();
    let rel = ejson_line(&victim, false)?;
    let can = ejson_line(&victim, true)?;
    let broken = (
        o_docs / 2,
        rel[..rel.len() / 2].to_string(),
        can[..can.len() / 2].to_string(),
    );

    // ---- expected numbers
    let o_invalid = o_half + o_wrong + o_deep;
    let o_other = o_v2;
    let o_valid = o_docs - o_invalid - o_other;
    let o_changed = o_v2 + o_half + o_wrong + o_status + o_deep;
    let c_valid = c_docs - c_v2;
    let expected = json!({
        "generator": {"seed": seed, "scale": scale, "clean": false},
        "collections": [
            {
                "name": "orders", "target_version": 1, "documents": o_docs, "unreadable": 1,
                "classes": {"valid": o_valid, "other_version": {"2": o_other}, "invalid": o_invalid},
                "indexes": {
                    "missing": [{"key": {"customer_id": 1}}],
                    "unexpected": [{"key": {"customer.id": 1}, "name": "customer.id_1"}]
                },
                "duplicates": [],
                "references": [
                    {"field": "customer_id", "collection": "customers", "orphans": o_v1_orphan},
                    {"field": "customer.id", "collection": "customers", "orphans": o_v2_orphan}
                ],
                "structure": {"missing_id": 1, "duplicate_id": 1, "too_deep": 1, "oversize": 0},
                "reconciliation": {
                    "baseline_documents": n_orders, "missing": o_deleted, "added": o_added,
                    "changed": o_changed, "reordered": o_reordered
                }
            },
            {
                "name": "customers", "target_version": 1, "documents": c_docs, "unreadable": 0,
                "classes": {"valid": c_valid, "other_version": {"2": c_v2}, "invalid": 0},
                "indexes": {
                    "missing": [{"key": {"email": 1}, "unique": true, "name": "email_1"}],
                    "unexpected": []
                },
                "duplicates": [{"key": {"email": 1}, "groups": g2 + g3, "documents": 2 * g2 + 3 * g3}],
                "references": [],
                "structure": zero_structure,
                "reconciliation": {
                    "baseline_documents": n_customers, "missing": c_deleted, "added": n_added_c,
                    "changed": c_v2, "reordered": c_reordered
                }
            }
        ],
        "planted": {
            "orders": {
                "v2_not_reverted": o_v2, "v2_orphans": o_v2_orphan, "half_reverted": o_half,
                "status_wrong_type": o_wrong, "v1_orphans": o_v1_orphan, "deleted": o_deleted,
                "added_valid": o_added, "reordered": o_reordered, "status_changed": o_status,
                "too_deep_depth": DEEP_DEPTH, "without_id": 1, "duplicate_id_copies": 1
            },
            "customers": {
                "v2_not_reverted": c_v2, "deleted_referenced_by_orphans": c_deleted,
                "added_new": c_added_valid, "added_duplicate_email": n_added_c - c_added_valid,
                "duplicate_groups_of_2": g2, "duplicate_groups_of_3": g3, "reordered": c_reordered
            }
        },
        "notes": [
            "documents counts readable documents only; unreadable records (a truncated BSON record at the end of dump orders.bson, one broken line in the middle of export/orders.json and export-canonical/orders.json) are counted in unreadable. export-array/orders.json cannot hold a broken element, so it has none: unreadable is 0 there, every other number is the same.",
            "Scaling: the four single structural plants (the unreadable record, the document without _id, the duplicate _id, the too-deep document) stay at 1 for every --scale; every other planted count is multiplied by --scale.",
            "The order without _id is classified (valid v1; the schemas do not require _id) and counted in documents and valid, and in structure.missing_id; it is not comparable by _id, so it is neither added, missing nor changed.",
            "The order with a duplicate _id is an exact copy (same content, same field order) of one added order. It counts in documents and valid, and in structure.duplicate_id (extra occurrences); reconciliation counts _ids, so that _id is one added, not two.",
            "The too_deep order is a baseline order with an extra field `debug` nested so that the document depth is 105 (top-level document = 1, each nested document or array adds 1): invalid (additionalProperties) and changed.",
            "Orphan orders reference the customers deleted after the baseline (customers reconciliation missing); the half-reverted invalid orders reference existing customers through customer_id.",
            "changed (orders) = v2 + half-reverted + wrong-type status + status changed + too_deep; changed (customers) = v2. Reordered documents have identical content.",
            "duplicates and references list only entries with a non-zero count (orders has no unique key besides _id; customers has no references).",
            "Duplicate emails: existing v1 customers re-registered after the baseline as new documents (added) with the same email; every document of a group is counted in duplicates.documents."
        ]
    });
    let mut expected = expected;
    let (find, docs) = plants.share(scale);
    if (find, docs) != (o_find_check(&expected), o_docs + c_docs) {
        return Err("internal: findings share computed from other counts than planted".into());
    }
    if let Some(p) = findings_share {
        expected["generator"]["findings_share"] = json!(p);
        if let Some(notes) = expected["notes"].as_array_mut() {
            notes.push(json!(format!(
                "--findings-share {p}: the other-version, invalid, orphan (and deleted customer) and duplicate-email plants are multiplied by {:.3} over --scale; {find} of {docs} documents have a finding a check reports without a baseline.",
                plants.o_v2 as f64 / (40 * scale) as f64
            )));
        }
    }

    Ok(Plan {
        baseline_customers,
        baseline_orders,
        customers: cur_customers,
        orders: cur_orders,
        orders_tail: Some(tail),
        orders_broken: Some(broken),
        expected,
        findings: (find, docs),
    })
}

/// Documents with a finding a check reports without a baseline, from the expected numbers
/// (a cross-check of `Plants::share`).
fn o_find_check(expected: &Value) -> usize {
    let n = |v: &Value| v.as_u64().unwrap_or(0) as usize;
    let mut find = 0;
    for c in expected["collections"].as_array().into_iter().flatten() {
        find += n(&c["classes"]["invalid"]);
        find += c["classes"]["other_version"]
            .as_object()
            .map_or(0, |m| m.values().map(n).sum());
        for d in c["duplicates"].as_array().into_iter().flatten() {
            find += n(&d["documents"]);
        }
        find += n(&c["structure"]["missing_id"]) + n(&c["structure"]["duplicate_id"]);
    }
    // v1 orphans are valid documents with a finding (v2 orphans are counted as v2).
    find + n(&expected["planted"]["orders"]["v1_orphans"])
}

/// A document of depth `depth` (itself = 1).
fn deep_doc(depth: usize) -> Document {
    let mut d = Document::new();
    d.insert("level", depth as i32);
    for level in (1..depth).rev() {
        let mut outer = Document::new();
        outer.insert("level", level as i32);
        outer.insert("next", d);
        d = outer;
    }
    d
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args()?;
    let plan = build(args.seed, args.scale, args.clean, args.findings_share)?;
    let out = &args.out;

    let v1_customer_ix = || vec![IndexSpec::new(&[("email", 1)], true)];
    let v1_order_ix = || {
        vec![
            IndexSpec::new(&[("customer_id", 1)], false),
            IndexSpec::new(&[("status", 1), ("created_at", -1)], false),
        ]
    };

    // Baseline: the pre-migration dump.
    for c in [
        Collection {
            name: "customers",
            docs: &plan.baseline_customers,
            indexes: v1_customer_ix(),
            bson_tail: None,
            broken_line: None,
        },
        Collection {
            name: "orders",
            docs: &plan.baseline_orders,
            indexes: v1_order_ix(),
            bson_tail: None,
            broken_line: None,
        },
    ] {
        write_dump(&out.join("baseline"), &c, args.seed, None)?;
    }

    // Current state.
    let (cust_ix, order_ix) = if args.clean {
        (v1_customer_ix(), v1_order_ix())
    } else {
        (
            Vec::new(), // unique email_1 was dropped by the migration and not rebuilt
            vec![
                IndexSpec::new(&[("status", 1), ("created_at", -1)], false),
                IndexSpec::new(&[("customer.id", 1)], false),
            ],
        )
    };
    let current = [
        Collection {
            name: "customers",
            docs: &plan.customers,
            indexes: cust_ix,
            bson_tail: None,
            broken_line: None,
        },
        Collection {
            name: "orders",
            docs: &plan.orders,
            indexes: order_ix,
            bson_tail: plan.orders_tail.clone(),
            broken_line: plan.orders_broken.clone(),
        },
    ];
    for c in &current {
        write_dump(&out.join("dump"), c, args.seed, Some(&out.join("dump-gz")))?;
        write_exports(out, c)?;
    }
    let mut expected = serde_json::to_string_pretty(&plan.expected)?;
    expected.push('\n');
    write_file(&out.join("expected.json"), expected.as_bytes())?;

    println!(
        "gen_shop: wrote {} (seed {}, scale {}{}): customers {} docs, orders {} docs (+{} unreadable); baseline {} customers, {} orders; {} of {} documents ({:.1} %) with findings",
        out.display(),
        args.seed,
        args.scale,
        if args.clean { ", clean" } else { "" },
        plan.customers.len(),
        plan.orders.len(),
        usize::from(plan.orders_tail.is_some()),
        plan.baseline_customers.len(),
        plan.baseline_orders.len(),
        plan.findings.0,
        plan.findings.1,
        100.0 * plan.findings.0 as f64 / plan.findings.1 as f64
    );
    Ok(())
}
