//! `docsweep templates list|show`: the bundled library, user directories and broken templates.

use crate::util::Workdir;

const BUNDLED: &[&str] = &[
    "revert-nested-reference",
    "revert-split-field",
    "units-from-cents",
    "cents-from-units",
    "restore-missing",
    "restore-changed",
    "quarantine-orphans",
    "quarantine-invalid",
    "quarantine-added",
    "dedupe-keep-first",
    "create-missing-index",
    "drop-unexpected-index",
    "set-default",
    "rename-field",
    "convert-field-type",
    "lowercase-email",
];

#[test]
fn list_shows_every_bundled_template() {
    let w = Workdir::new();
    let run = w.docsweep(&["templates", "list"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in BUNDLED {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with(&format!("{name} "))),
            "{name} missing from:\n{}",
            run.stdout
        );
    }
    // Every file of repair-templates/ is bundled.
    let dir = crate::util::repo().join("repair-templates");
    let files = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert_eq!(run.stdout.lines().count(), files + 1, "{}", run.stdout);
}

#[test]
fn show_prints_description_params_and_steps() {
    let w = Workdir::new();
    let run = w.docsweep(&["templates", "show", "revert-nested-reference"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = &run.stdout;
    for want in [
        "Move a nested reference (X.id) back to a top-level field (X_id)",
        "select      other_version:2",
        "parameters",
        "from    field    default \"customer.id\"",
        "to      field    default \"customer_id\"",
        "remove  field    default \"customer\"",
        "steps",
        "1. rename  from = \"{{from}}\", to = \"{{to}}\"",
        "2. unset  field = \"{{remove}}\"",
    ] {
        assert!(out.contains(want), "{want:?} not in:\n{out}");
    }
    let run = w.docsweep(&["templates", "show", "no-such-template"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no template named"), "{}", run.stderr);
}

#[test]
fn user_directories_and_broken_templates() {
    let w = Workdir::new();
    let mine = w.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(
        mine.join("fix-status.toml"),
        "# mine\nname = \"fix-status\"\ndescription = \"Default the status of orders.\"\n\
         collection = \"orders\"\nselect = \"invalid\"\n\
         [[steps]]\nop = \"default\"\nfield = \"status\"\nvalue = \"new\"\n",
    )
    .unwrap();
    let run = w.docsweep(&["templates", "list", "--templates", "mine"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("fix-status"), "{}", run.stdout);
    assert!(
        run.stdout.contains("mine/fix-status.toml") || run.stdout.contains("mine\\fix-status.toml")
    );
    let run = w.docsweep(&["templates", "show", "fix-status", "--dir", "mine"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("collection  orders"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("1. default  field = \"status\", value = \"new\""),
        "{}",
        run.stdout
    );

    let broken = w.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(
        broken.join("bad.toml"),
        "name = \"bad\"\ndescription = \"d\"\nselect = \"invalid\"\n\
         [[steps]]\nop = \"unset\"\nfield = \"a\"\n\
         [[steps]]\nop = \"rename\"\nfrom = \"a\"\ninto = \"b\"\n",
    )
    .unwrap();
    for args in [
        &["templates", "list", "--dir", "broken"][..],
        &["templates", "show", "rename-field", "--dir", "broken"][..],
    ] {
        let run = w.docsweep(args);
        assert_eq!(run.code, 2, "{}", run.stdout);
        assert!(run.stderr.contains("bad.toml"), "{}", run.stderr);
        assert!(
            run.stderr
                .contains("step 2 (rename): unknown argument `into`"),
            "{}",
            run.stderr
        );
    }

    // A user template may not shadow a bundled one.
    std::fs::write(
        broken.join("bad.toml"),
        "name = \"rename-field\"\ndescription = \"d\"\nselect = \"invalid\"\n[[steps]]\nop = \"delete\"\n",
    )
    .unwrap();
    let run = w.docsweep(&["templates", "list", "--dir", "broken"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("bad.toml") && run.stderr.contains("bundled"),
        "{}",
        run.stderr
    );

    let run = w.docsweep(&["templates", "list", "--dir", "missing-dir"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("missing-dir"), "{}", run.stderr);
}
