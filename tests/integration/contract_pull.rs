//! `docsweep contract pull` against a real MongoDB-wire server (`DOCSWEEP_TEST_MONGODB_URI`,
//! FerretDB started by scripts/test unless set): the written contract loads and keeps the
//! collection's indexes in order; a `$jsonSchema` validator, where the server accepts one,
//! is translated into a schema that accepts and rejects documents as the server does.

use bson::{doc, Bson, Document};
use mongodb::sync::Client;
use serde_json::Value;

use crate::util::{fresh_db, server, with_db, Workdir};

fn relaxed(d: &Document) -> Value {
    docsweep::value::from_bson(&d.to_vec().unwrap())
        .unwrap()
        .value
}

#[test]
fn pull_writes_a_contract_with_the_indexes_in_order() {
    let Some(uri) = server() else { return };
    let db = fresh_db("indexes");
    let client = Client::with_uri_str(&uri).unwrap();
    let orders = client.database(&db).collection::<Document>("orders");
    orders
        .insert_many([
            doc! {"_id": 1, "status": "new", "created_at": bson::DateTime::from_millis(0),
            "email": "a@example.com", "customer": {"id": 7}},
            doc! {"_id": 2, "status": "paid", "created_at": bson::DateTime::from_millis(1),
            "email": "b@example.com", "customer": {"id": 8}},
        ])
        .run()
        .unwrap();
    client
        .database(&db)
        .run_command(doc! {"createIndexes": "orders", "indexes": [
            {"key": {"status": 1, "created_at": -1}, "name": "status_1_created_at_-1"},
            {"key": {"email": 1}, "name": "email_1", "unique": true},
            {"key": {"customer.id": 1}, "name": "customer.id_1"},
        ]})
        .run()
        .unwrap();

    let w = Workdir::new();
    let source = with_db(&uri, &db);
    let pull = |extra: &[&str]| {
        let mut args = vec![
            "contract",
            "pull",
            "--source",
            &source,
            "--collection",
            "orders",
        ];
        args.extend_from_slice(extra);
        w.docsweep(&args)
    };
    let run = pull(&[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("no validator"),
        "a note about the permissive schema: {}",
        run.stderr
    );
    let contract_path = w.path().join("schemas/orders/contract.toml");
    let c = docsweep::contract::load(&contract_path).unwrap();
    assert_eq!((c.collection.as_str(), c.target), ("orders", 1));
    let v1 = c.version(1).unwrap();
    // In the server's listIndexes order: creation order on MongoDB, by name on FerretDB
    // (docs/ferretdb.md); the order of the fields within a key is always kept.
    let mut got: Vec<Value> = v1
        .indexes
        .iter()
        .map(docsweep::contract::IndexSpec::to_report_json)
        .collect();
    let by_name = |v: &Value| v["name"].as_str().unwrap().to_string();
    let server_order: Vec<String> = orders
        .list_index_names()
        .run()
        .unwrap()
        .into_iter()
        .filter(|n| n != "_id_")
        .collect();
    assert_eq!(got.iter().map(by_name).collect::<Vec<_>>(), server_order);
    got.sort_by_key(by_name);
    assert_eq!(
        got,
        [
            serde_json::json!({"key": {"customer.id": 1}, "name": "customer.id_1"}),
            serde_json::json!({"key": {"email": 1}, "name": "email_1", "unique": true}),
            serde_json::json!({"key": {"status": 1, "created_at": -1}, "name": "status_1_created_at_-1"}),
        ]
    );
    let text = w.read("schemas/orders/contract.toml");
    assert!(
        text.contains("{ key = { status = 1, created_at = -1 }"),
        "{text}"
    );
    assert!(text.contains("{ key = { \"customer.id\" = 1 }"), "{text}");
    assert!(!text.contains("_id_"), "{text}");
    assert_eq!(
        w.read_json("schemas/orders/v1.schema.json"),
        serde_json::json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"})
    );

    // The pulled contract describes the collection: a check against it is clean.
    let check = w.docsweep(&[
        "check",
        "--no-progress",
        "--source",
        &source,
        "--collection",
        "orders",
        "--schemas",
        "schemas",
        "--report-dir",
        "report",
    ]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);

    // A second pull appends version 2 and leaves the target alone.
    let run = pull(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let c = docsweep::contract::load(&contract_path).unwrap();
    assert_eq!(c.versions.len(), 2);
    assert_eq!(c.target, 1);
    assert_eq!(c.version(2).unwrap().indexes, v1.indexes);

    // Never overwritten: an existing version, an existing schema file.
    let before = w.read("schemas/orders/contract.toml");
    let run = pull(&["--version", "1"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("contract.toml") && run.stderr.contains("version 1 already exists"),
        "{}",
        run.stderr
    );
    std::fs::write(w.path().join("schemas/orders/v3.schema.json"), "{}").unwrap();
    let run = pull(&[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("v3.schema.json") && run.stderr.contains("refusing to overwrite"),
        "{}",
        run.stderr
    );
    assert_eq!(w.read("schemas/orders/contract.toml"), before);
    assert_eq!(w.read("schemas/orders/v3.schema.json"), "{}");

    // Wrong collection, wrong kind of source.
    let run = w.docsweep(&[
        "contract",
        "pull",
        "--source",
        &source,
        "--collection",
        "nope",
        "--schemas",
        "other",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("nope"), "{}", run.stderr);
    let run = w.docsweep(&[
        "contract",
        "pull",
        "--source",
        "dump:x",
        "--collection",
        "orders",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("mongodb://"), "{}", run.stderr);

    client.database(&db).drop().run().unwrap();
}

/// The MongoDB manual's `students` validator.
fn students_validator() -> Document {
    doc! {"$jsonSchema": {
        "bsonType": "object",
        "title": "Student Object Validation",
        "required": ["address", "major", "name", "year"],
        "properties": {
            "name": {"bsonType": "string", "description": "'name' must be a string and is required"},
            "year": {"bsonType": "int", "minimum": 2017, "maximum": 3017},
            "major": {"enum": ["Math", "English", "Computer Science", "History", Bson::Null]},
            "gpa": {"bsonType": ["double"]},
            "address": {"bsonType": "object", "required": ["city"],
                        "properties": {"street": {"bsonType": "string"}, "city": {"bsonType": "string"}}},
            "tags": {"bsonType": "array", "items": {"bsonType": "string"}},
            "advisor": {"bsonType": ["objectId", "null"]},
            "enrolled": {"bsonType": "date"}
        }
    }}
}

fn student_samples() -> Vec<Document> {
    let ok = doc! {
        "name": "Alice", "year": 2019_i32, "major": "History", "gpa": 3.5,
        "address": {"city": "NYC", "street": "33rd Street"}
    };
    let with = |k: &str, v: Bson| {
        let mut d = ok.clone();
        d.insert(k, v);
        d
    };
    let mut no_city = ok.clone();
    no_city.insert("address", doc! {"street": "x"});
    let mut no_year = ok.clone();
    no_year.remove("year");
    vec![
        ok.clone(),
        with("year", Bson::Int32(2016)),
        with("year", Bson::String("2019".into())),
        with("major", Bson::String("Art".into())),
        with("major", Bson::Null),
        with("gpa", Bson::String("3".into())),
        with("tags", Bson::Array(vec!["a".into(), "b".into()])),
        with("tags", Bson::Array(vec![Bson::Int32(1)])),
        with("advisor", Bson::ObjectId(bson::oid::ObjectId::new())),
        with("advisor", Bson::String("x".into())),
        with("enrolled", Bson::DateTime(bson::DateTime::now())),
        with("enrolled", Bson::String("2024-01-01".into())),
        with("address", Bson::String("NYC".into())),
        no_city,
        no_year,
    ]
}

#[test]
fn a_json_schema_validator_is_translated_or_the_server_refuses_it() {
    let Some(uri) = server() else { return };
    let db = fresh_db("validator");
    let client = Client::with_uri_str(&uri).unwrap();
    let created = client
        .database(&db)
        .run_command(doc! {"create": "students", "validator": students_validator()})
        .run();
    if let Err(e) = created {
        // FerretDB v1.24.2 implements no validators (docs/ferretdb.md): `create` with a
        // `validator` fails with NotImplemented (238), naming the field.
        let code = match e.kind.as_ref() {
            mongodb::error::ErrorKind::Command(c) => c.code,
            other => panic!("create with a validator failed unexpectedly: {other:?}"),
        };
        assert_eq!(code, 238, "NotImplemented expected: {e}");
        assert!(e.to_string().contains("validator"), "{e}");
        // Nothing was created with it; a plain collection pulls as permissive.
        client
            .database(&db)
            .run_command(doc! {"create": "students"})
            .run()
            .unwrap();
        let w = Workdir::new();
        let run = w.docsweep(&[
            "contract",
            "pull",
            "--source",
            &with_db(&uri, &db),
            "--collection",
            "students",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains("no validator"), "{}", run.stderr);
        client.database(&db).drop().run().unwrap();
        return;
    }

    // A server that validates: the translated schema must agree with it.
    let w = Workdir::new();
    let run = w.docsweep(&[
        "contract",
        "pull",
        "--source",
        &with_db(&uri, &db),
        "--collection",
        "students",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let c = docsweep::contract::load(&w.path().join("schemas/students/contract.toml")).unwrap();
    let schema = w.read_json("schemas/students/v1.schema.json");
    assert_eq!(schema["title"], "Student Object Validation");
    let validator = &c.version(1).unwrap().validator;
    let coll = client.database(&db).collection::<Document>("students");
    for sample in student_samples() {
        let server_accepts = match coll.insert_one(sample.clone()).run() {
            Ok(r) => {
                // The server added an _id: validate the document as stored.
                let mut stored = sample.clone();
                stored.insert("_id", r.inserted_id);
                assert!(
                    validator.is_valid(&relaxed(&stored)),
                    "the server accepted {stored} but the pulled schema rejects it:\n{schema:#}"
                );
                true
            }
            Err(e) => {
                assert!(
                    e.to_string().contains("121") || e.to_string().contains("validation"),
                    "{e}"
                );
                false
            }
        };
        if !server_accepts {
            let mut d = sample.clone();
            d.insert("_id", bson::oid::ObjectId::new());
            assert!(
                !validator.is_valid(&relaxed(&d)),
                "the server rejected {d} but the pulled schema accepts it:\n{schema:#}"
            );
        }
    }
    client.database(&db).drop().run().unwrap();
}
