//! The `lowercase` op through the bundled `lowercase-email` template: planned and applied on
//! the example's customers with some addresses upper-cased, undone byte for byte; a
//! non-string address stops the plan naming the field and the type.

use std::path::Path;

use docsweep::repair::plan::Plan;

use crate::repair::{dump, plan};
use crate::util::{copy_dir, example, Workdir};

fn read_docs(path: &Path) -> Vec<bson::Document> {
    let bytes = std::fs::read(path).unwrap();
    let mut docs = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let len = i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        docs.push(bson::Document::from_reader(&bytes[at..at + len]).unwrap());
        at += len;
    }
    docs
}

fn write_docs(path: &Path, docs: &[bson::Document]) {
    let mut bytes = Vec::new();
    for d in docs {
        bytes.extend(d.to_vec().unwrap());
    }
    std::fs::write(path, bytes).unwrap();
}

/// The example dump in `src/`, with the email of every `every`-th customer that passes the
/// target version (its `name` is a string) changed by `edit`.
fn edited_dump(w: &Workdir, every: usize, edit: impl Fn(&str) -> bson::Bson) -> Vec<String> {
    copy_dir(&example().join("data/dump"), &w.path().join("src"));
    let file = w.path().join("src/shop/customers.bson");
    let mut docs = read_docs(&file);
    let mut ids = Vec::new();
    let valid = docs.iter_mut().filter(|d| d.get_str("name").is_ok());
    for d in valid.step_by(every) {
        let email = d.get_str("email").unwrap().to_string();
        d.insert("email", edit(&email));
        ids.push(d.get_object_id("_id").unwrap().to_hex());
    }
    write_docs(&file, &docs);
    ids
}

fn plan_lowercase(w: &Workdir, source: &str, out: &str) -> crate::util::Run {
    plan(
        w,
        &[
            "--template",
            "lowercase-email",
            "--collection",
            "customers",
            "--source",
            source,
            "--out",
            out,
        ],
    )
}

#[test]
fn lowercase_email_plans_applies_and_undoes() {
    let w = Workdir::new();
    // The example's addresses are all lower case: nothing to do.
    let run = plan_lowercase(&w, &dump(), "none.plan");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        Plan::read(&w.path().join("none.plan"))
            .unwrap()
            .entries
            .len(),
        0
    );

    let upper = |e: &str| {
        let (user, host) = e.split_once('@').unwrap();
        let mut u = user.to_string();
        u[..1].make_ascii_uppercase();
        bson::Bson::String(format!("{u}@{}", host.to_uppercase()))
    };
    let ids = edited_dump(&w, 7, upper);
    assert!(ids.len() > 40, "{}", ids.len());
    let run = plan_lowercase(&w, "dump:src", "p.plan");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let p = Plan::read(&w.path().join("p.plan")).unwrap();
    assert_eq!(p.entries.len(), ids.len());
    let run = w.docsweep(&[
        "repair", "apply", "p.plan", "--out", "dump:out", "--audit", "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Lower-casing gives back exactly the example's customers.
    let original = example().join("data/dump/shop/customers.bson");
    assert_eq!(
        read_docs(&w.path().join("out/shop/customers.bson")),
        read_docs(&original)
    );
    // Nothing left to do, and undo gives back the edited bytes.
    let run = plan_lowercase(&w, "dump:out", "again.plan");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        Plan::read(&w.path().join("again.plan"))
            .unwrap()
            .entries
            .len(),
        0
    );
    let run = w.docsweep(&[
        "repair",
        "undo",
        "out/shop/.docsweep/journal",
        "--out",
        "dump:undone",
        "--audit",
        "a.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        std::fs::read(w.path().join("undone/shop/customers.bson")).unwrap(),
        std::fs::read(w.path().join("src/shop/customers.bson")).unwrap()
    );
}

#[test]
fn a_non_string_email_stops_the_plan_naming_field_and_type() {
    let w = Workdir::new();
    edited_dump(&w, 50, |_| bson::Bson::Int32(12));
    let run = plan_lowercase(&w, "dump:src", "p.plan");
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "step 1 (lowercase), field `email`: a int cannot be lower-cased (not a string)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("12"),
        "no values in messages: {}",
        run.stderr
    );
    assert!(!w.path().join("p.plan").exists());
}
