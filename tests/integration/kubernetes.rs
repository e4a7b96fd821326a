//! The Kubernetes example (examples/kubernetes/) as written: every YAML document parses and
//! is of the expected kind; the ConfigMap holds a valid docsweep.toml and the shop
//! example's contracts, and no credentials; the pods' podFailurePolicy does what the
//! comments say with docsweep's exit codes. Then the containers' own `args` run with the
//! real binary, in a directory laid out like the ConfigMap volume the pods mount, with
//! `$(VAR)`s expanded from the containers' `env` as Kubernetes does and every claim's
//! mount path mapped to a scratch directory: the Indexed Job's partitions merged by the
//! merge Job give the report of a single `docsweep check`, and the CronJob's sweep gives
//! it too, also after an interruption, and removes its checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml::Value;

use crate::util::{copy_dir, example, repo};

fn dir() -> PathBuf {
    repo().join("examples/kubernetes")
}

/// The YAML files of the example and the (apiVersion, kind) of their documents, in order.
const FILES: &[(&str, &[(&str, &str)])] = &[
    ("configmap.yaml", &[("v1", "ConfigMap")]),
    ("secret.example.yaml", &[("v1", "Secret")]),
    (
        "cronjob.yaml",
        &[("v1", "PersistentVolumeClaim"), ("batch/v1", "CronJob")],
    ),
    (
        "indexed-job.yaml",
        &[("v1", "PersistentVolumeClaim"), ("batch/v1", "Job")],
    ),
    ("merge-job.yaml", &[("batch/v1", "Job")]),
];

/// Every document of an example file, parsed.
fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{file}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// The one document of `kind` in `file`.
fn document(file: &str, kind: &str) -> Value {
    let mut found: Vec<Value> = documents(file)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "{file}: one {kind}");
    found.pop().unwrap()
}

fn string(v: &Value, what: &str) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {v:?}"))
        .to_string()
}

fn seq<'a>(v: &'a Value, what: &str) -> &'a [Value] {
    v.as_sequence()
        .unwrap_or_else(|| panic!("{what}: expected a list, got {v:?}"))
}

/// The Job spec of a Job or of a CronJob's jobTemplate.
fn job_spec(doc: &Value) -> &Value {
    match doc["kind"].as_str() {
        Some("CronJob") => &doc["spec"]["jobTemplate"]["spec"],
        Some("Job") => &doc["spec"],
        k => panic!("not a Job or CronJob: {k:?}"),
    }
}

fn pod_spec(doc: &Value) -> &Value {
    &job_spec(doc)["template"]["spec"]
}

fn container(doc: &Value) -> &Value {
    let cs = seq(&pod_spec(doc)["containers"], "containers");
    assert_eq!(cs.len(), 1, "one container");
    assert_eq!(cs[0]["name"], "docsweep");
    &cs[0]
}

fn args(c: &Value) -> Vec<String> {
    seq(&c["args"], "args")
        .iter()
        .map(|a| string(a, "arg"))
        .collect()
}

/// What a Job's podFailurePolicy does with a pod whose `docsweep` container exited with
/// `code`: the first matching rule's action, or None (the failure counts against
/// backoffLimit and the pod is retried).
fn on_exit(doc: &Value, code: i64) -> Option<String> {
    let rules = &job_spec(doc)["podFailurePolicy"]["rules"];
    for rule in rules.as_sequence().map(Vec::as_slice).unwrap_or_default() {
        let oec = &rule["onExitCodes"];
        if oec.is_null() {
            continue;
        }
        if let Some(name) = oec["containerName"].as_str() {
            if name != "docsweep" {
                continue;
            }
        }
        let values: Vec<i64> = seq(&oec["values"], "onExitCodes.values")
            .iter()
            .map(|v| v.as_i64().expect("exit code"))
            .collect();
        let hit = match oec["operator"].as_str() {
            Some("In") => values.contains(&code),
            Some("NotIn") => !values.contains(&code),
            op => panic!("onExitCodes.operator {op:?}"),
        };
        if hit {
            return Some(string(&rule["action"], "action"));
        }
    }
    None
}

/// The API's rules for a podFailurePolicy: restartPolicy Never; exit codes listed in
/// ascending order without duplicates, `In` never with 0; a known action. Also asserts
/// that evictions and preemptions (DisruptionTarget) are ignored.
fn check_policy_is_valid(doc: &Value, what: &str) {
    let spec = job_spec(doc);
    assert_eq!(pod_spec(doc)["restartPolicy"], "Never", "{what}");
    let rules = seq(&spec["podFailurePolicy"]["rules"], "rules");
    let mut ignores_disruption = false;
    for rule in rules {
        let action = string(&rule["action"], "action");
        assert!(
            ["FailJob", "Ignore", "Count", "FailIndex"].contains(&action.as_str()),
            "{what}: {action}"
        );
        if let Some(values) = rule["onExitCodes"]["values"].as_sequence() {
            let v: Vec<i64> = values.iter().map(|v| v.as_i64().unwrap()).collect();
            assert!(v.windows(2).all(|w| w[0] < w[1]), "{what}: {v:?}");
            if rule["onExitCodes"]["operator"] == "In" {
                assert!(!v.contains(&0), "{what}: In with 0");
            }
        }
        if let Some(conds) = rule["onPodConditions"].as_sequence() {
            ignores_disruption |= action == "Ignore"
                && conds
                    .iter()
                    .any(|c| c["type"] == "DisruptionTarget" && c["status"] == "True");
        }
    }
    assert!(
        ignores_disruption,
        "{what}: evictions should not use up retries"
    );
}

/// A shared scratch "cluster": one directory per PersistentVolumeClaim.
struct Cluster {
    tmp: tempfile::TempDir,
    /// The source the Secret's URI stands for.
    source: String,
}

impl Cluster {
    fn new() -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        copy_dir(
            &example().join("data/dump"),
            &tmp.path().join("mongodb/dump"),
        );
        let source = format!("dump:{}", tmp.path().join("mongodb/dump").display());
        Cluster { tmp, source }
    }

    fn claim(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join("claims").join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

/// One pod of a Job or CronJob, laid out on the local file system.
struct Pod {
    /// Mount path in the container → directory here.
    mounts: Vec<(String, PathBuf)>,
    workdir: PathBuf,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

/// Writes a configMap volume as the kubelet does: the files in a timestamped directory,
/// `..data` pointing at it, and the top-level names as links into `..data`.
fn mount_config_map(volume: &Value, at: &Path) {
    let cm = document("configmap.yaml", "ConfigMap");
    assert_eq!(
        volume["name"], cm["metadata"]["name"],
        "the ConfigMap mounted"
    );
    let data = cm["data"].as_mapping().expect("ConfigMap data");
    let items = seq(&volume["items"], "configMap items");
    let mounted: Vec<String> = items.iter().map(|i| string(&i["key"], "key")).collect();
    for key in data.keys() {
        let key = string(key, "data key");
        assert!(
            mounted.contains(&key),
            "ConfigMap key {key} is not in the volume's items: it would not be mounted"
        );
    }
    let stamp = at.join("..2025_01_01_02_30_00.000000001");
    let mut top = Vec::new();
    for item in items {
        let key = string(&item["key"], "key");
        let path = string(&item["path"], "path");
        let text = data
            .get(key.as_str())
            .unwrap_or_else(|| panic!("items: no key {key} in the ConfigMap"));
        let file = stamp.join(&path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, string(text, &key)).unwrap();
        let first = path.split('/').next().unwrap().to_string();
        if !top.contains(&first) {
            top.push(first);
        }
    }
    link(Path::new(stamp.file_name().unwrap()), &at.join("..data"));
    for name in top {
        link(&Path::new("..data").join(&name), &at.join(&name));
    }
}

#[cfg(unix)]
fn link(target: &Path, at: &Path) {
    std::os::unix::fs::symlink(target, at).unwrap();
}

#[cfg(not(unix))]
fn link(target: &Path, at: &Path) {
    let from = at.parent().unwrap().join(target);
    if from.is_dir() {
        copy_dir(&from, at);
    } else {
        std::fs::copy(&from, at).unwrap();
    }
}

/// Replaces `$(NAME)` by its value, as Kubernetes expands a container's args; a
/// reference to an undefined variable is a mistake in the example.
fn expand(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(')').expect("unclosed $(") + i;
        let name = &rest[i + 2..end];
        let v = env
            .get(name)
            .unwrap_or_else(|| panic!("$({name}) in {s:?} is not defined in the env"));
        out.push_str(v);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

impl Pod {
    /// The pod of `doc` (a Job or CronJob) as job `job_name`, with completion index `index`.
    fn new(cluster: &Cluster, doc: &Value, job_name: &str, index: Option<u32>) -> Pod {
        let dir = tempfile::tempdir().unwrap();
        let spec = pod_spec(doc);
        let c = container(doc);
        assert_eq!(
            string(&c["command"][0], "command"),
            "/usr/local/bin/docsweep"
        );
        // Volumes and mounts.
        let volumes = seq(&spec["volumes"], "volumes");
        let mut mounts = Vec::new();
        for m in seq(&c["volumeMounts"], "volumeMounts") {
            let name = string(&m["name"], "mount name");
            let path = string(&m["mountPath"], "mountPath");
            let v = volumes
                .iter()
                .find(|v| v["name"] == name.as_str())
                .unwrap_or_else(|| panic!("no volume {name}"));
            let local = if !v["configMap"].is_null() {
                assert_eq!(
                    m["readOnly"], true,
                    "the configuration is mounted read-only"
                );
                let at = dir.path().join("volumes").join(&name);
                std::fs::create_dir_all(&at).unwrap();
                mount_config_map(&v["configMap"], &at);
                at
            } else if !v["persistentVolumeClaim"].is_null() {
                cluster.claim(&string(
                    &v["persistentVolumeClaim"]["claimName"],
                    "claimName",
                ))
            } else {
                panic!("volume {name}: unexpected kind {v:?}");
            };
            mounts.push((path, local));
        }
        // The environment, as the kubelet resolves it.
        let secret = document("secret.example.yaml", "Secret");
        let mut env = BTreeMap::new();
        if let Some(i) = index {
            // Set by the Job controller in an Indexed Job's pods.
            env.insert("JOB_COMPLETION_INDEX".to_string(), i.to_string());
        }
        for e in c["env"]
            .as_sequence()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let name = string(&e["name"], "env name");
            let from = &e["valueFrom"];
            let value = if let Some(v) = e["value"].as_str() {
                v.to_string()
            } else if !from["secretKeyRef"].is_null() {
                let r = &from["secretKeyRef"];
                assert_eq!(r["name"], secret["metadata"]["name"], "{name}: the Secret");
                let key = string(&r["key"], "secret key");
                let uri = string(&secret["stringData"][key.as_str()], "secret value");
                assert!(uri.starts_with("mongodb://"), "{uri}");
                cluster.source.clone()
            } else {
                let path = string(&from["fieldRef"]["fieldPath"], "fieldPath");
                match path.as_str() {
                    "metadata.annotations['batch.kubernetes.io/job-completion-index']" => index
                        .expect("a completion index outside an Indexed Job")
                        .to_string(),
                    "metadata.labels['job-name']"
                    | "metadata.labels['batch.kubernetes.io/job-name']" => job_name.to_string(),
                    p => panic!("{name}: unexpected fieldPath {p}"),
                }
            };
            env.insert(name, value);
        }
        let mut pod = Pod {
            mounts,
            workdir: PathBuf::new(),
            args: Vec::new(),
            _dir: dir,
        };
        pod.workdir = pod.map(&string(&c["workingDir"], "workingDir"));
        assert!(
            pod.workdir.join("docsweep.toml").is_file(),
            "workingDir holds docsweep.toml"
        );
        pod.args = args(c)
            .iter()
            .map(|a| {
                let a = expand(a, &env);
                if a.starts_with('/') {
                    pod.map(&a).to_string_lossy().into_owned()
                } else {
                    a
                }
            })
            .collect();
        pod
    }

    /// The local path of an absolute path in the container; it must be on a volume (the
    /// root file system is read-only).
    fn map(&self, p: &str) -> PathBuf {
        for (at, local) in &self.mounts {
            if p == at {
                return local.clone();
            }
            if let Some(rest) = p
                .strip_prefix(at.as_str())
                .and_then(|r| r.strip_prefix('/'))
            {
                return local.join(rest);
            }
        }
        panic!("{p} is on no volume (the root file system is read-only)")
    }

    /// The ConfigMap's docsweep.toml names paths in the container too (report_dir): point
    /// them at the claims' local directories. Nothing else in it changes.
    fn map_config_paths(&self) {
        let toml = self.workdir.join("docsweep.toml");
        let text = std::fs::read_to_string(&toml).unwrap();
        let mut mapped = text.clone();
        for (at, local) in &self.mounts {
            if local.starts_with(&self.workdir) {
                continue;
            }
            mapped = mapped.replace(&format!("\"{at}/"), &format!("\"{}/", local.display()));
        }
        if mapped != text {
            std::fs::write(&toml, mapped).unwrap();
        }
    }

    fn run(&self, failpoint: Option<&str>) -> (Option<i32>, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_docsweep"));
        cmd.args(&self.args)
            .current_dir(&self.workdir)
            .env_remove("RUST_BACKTRACE");
        if let Some(f) = failpoint {
            cmd.env("DOCSWEEP_FAILPOINT", f);
        }
        let o = cmd.output().expect("run docsweep");
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (o.status.code(), stderr)
    }
}

/// report.json without its timestamps.
fn timeless(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut r: serde_json::Value = serde_json::from_str(&text).unwrap();
    r["started_at"] = serde_json::Value::Null;
    r["finished_at"] = serde_json::Value::Null;
    crate::util::without_history(&mut r);
    r
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A plain `docsweep check` of the same source with the pod's configuration: the result
/// every way of running the sweep must give.
fn single_run(cluster: &Cluster, pod: &Pod) -> PathBuf {
    let out = cluster.tmp.path().join("single");
    let o = Command::new(env!("CARGO_BIN_EXE_docsweep"))
        .args(["check", "--no-progress", "--source", &cluster.source])
        .arg("--report-dir")
        .arg(&out)
        .current_dir(&pod.workdir)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "the example has findings: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn every_document_parses_and_is_of_the_expected_kind() {
    let mut on_disk: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FILES.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every YAML file of the example is tested");
    for (file, kinds) in FILES {
        let docs = documents(file);
        let got: Vec<(String, String)> = docs
            .iter()
            .map(|d| {
                (
                    string(&d["apiVersion"], "apiVersion"),
                    string(&d["kind"], "kind"),
                )
            })
            .collect();
        let want: Vec<(String, String)> = kinds
            .iter()
            .map(|(a, k)| (a.to_string(), k.to_string()))
            .collect();
        assert_eq!(got, want, "{file}");
        for d in &docs {
            assert!(d["metadata"]["name"].is_string(), "{file}: a name");
        }
    }
}

#[test]
fn the_config_map_holds_the_shop_contracts_and_no_credentials() {
    let cm = document("configmap.yaml", "ConfigMap");
    let data = cm["data"].as_mapping().unwrap();
    let toml_text = string(&data["docsweep.toml"], "docsweep.toml");
    let cfg: toml::Table = toml::from_str(&toml_text).expect("docsweep.toml is TOML");
    assert!(
        !cfg.contains_key("source"),
        "the source (with its password) comes from the Secret, not the ConfigMap"
    );
    for (k, v) in data {
        let (k, v) = (string(k, "key"), string(v, "value"));
        assert!(!v.contains("mongodb://"), "{k} holds a connection string");
        if k == "docsweep.toml" {
            continue;
        }
        let (coll, file) = k.split_once('.').unwrap();
        let shop = example().join("schemas").join(coll).join(file);
        assert_eq!(v, read(&shop), "{k} is not {}", shop.display());
    }
    let mut shop_files = 0;
    for coll in std::fs::read_dir(example().join("schemas")).unwrap() {
        let coll = coll.unwrap();
        for f in std::fs::read_dir(coll.path()).unwrap() {
            let key = format!(
                "{}.{}",
                coll.file_name().to_string_lossy(),
                f.unwrap().file_name().to_string_lossy()
            );
            assert!(data.contains_key(key.as_str()), "missing {key}");
            shop_files += 1;
        }
    }
    assert_eq!(data.len(), shop_files + 1);
}

#[test]
fn failure_policies_fail_on_findings_and_retry_source_failures() {
    let cron = document("cronjob.yaml", "CronJob");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    check_policy_is_valid(&cron, "cronjob");
    assert_eq!(on_exit(&cron, 1).as_deref(), Some("FailJob"), "findings");
    assert_eq!(on_exit(&cron, 2).as_deref(), Some("FailJob"), "usage");
    assert_eq!(on_exit(&cron, 3), None, "a source failure is retried");
    assert_eq!(on_exit(&cron, 137), None, "a killed pod is retried");

    let parts = document("indexed-job.yaml", "Job");
    check_policy_is_valid(&parts, "indexed job");
    let spec = job_spec(&parts);
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], spec["parallelism"]);
    for code in [1, 2, 3, 137] {
        assert_eq!(on_exit(&parts, code), None, "a partition is simply re-run");
    }

    let merge = document("merge-job.yaml", "Job");
    check_policy_is_valid(&merge, "merge job");
    assert_eq!(on_exit(&merge, 1).as_deref(), Some("FailJob"));
    assert_eq!(on_exit(&merge, 2).as_deref(), Some("FailJob"));

    for doc in [&cron, &parts, &merge] {
        let pod = pod_spec(doc);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let c = container(doc);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    }
    let requests = &container(&cron)["resources"]["requests"];
    assert_eq!(requests["cpu"], "2");

    // The script runs the Jobs of these files and is valid bash.
    let script = read(&dir().join("run-partitioned.sh"));
    for name in [&parts["metadata"]["name"], &merge["metadata"]["name"]] {
        assert!(script.contains(&format!("job-name={}", string(name, "name"))));
    }
    assert!(script.contains("set -euo pipefail"));
    if let Ok(o) = Command::new("bash")
        .arg("-n")
        .arg(dir().join("run-partitioned.sh"))
        .output()
    {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn the_indexed_job_and_the_merge_give_the_single_run_report() {
    let cluster = Cluster::new();
    let parts = document("indexed-job.yaml", "Job");
    let merge = document("merge-job.yaml", "Job");
    let job = string(&parts["metadata"]["name"], "name");
    let n = job_spec(&parts)["completions"]
        .as_u64()
        .expect("completions") as u32;
    let mut single = None;
    for i in 0..n {
        let pod = Pod::new(&cluster, &parts, &job, Some(i));
        pod.map_config_paths();
        if single.is_none() {
            single = Some(single_run(&cluster, &pod));
        }
        let (code, stderr) = pod.run(None);
        assert_eq!(code, Some(0), "partition {i}: {stderr}");
        let part = cluster
            .claim("docsweep-partitions")
            .join(format!("part-{i}"));
        assert!(part.join("partial.dsw").is_file(), "partition {i}");
    }
    let single = single.unwrap();

    let pod = Pod::new(&cluster, &merge, "docsweep-merge", None);
    pod.map_config_paths();
    let (code, stderr) = pod.run(None);
    assert_eq!(
        code,
        Some(1),
        "the merge reports the example's findings: {stderr}"
    );
    let merged = cluster.claim("docsweep-partitions").join("merged");
    assert_eq!(timeless(&merged), timeless(&single));
    assert_eq!(
        read(&merged.join("violations.csv")),
        read(&single.join("violations.csv"))
    );
    for f in ["report.html", "junit.xml", "docsweep.prom"] {
        assert!(merged.join(f).is_file(), "{f}");
    }
    assert!(read(&merged.join("docsweep.prom")).contains("docsweep_status 1"));

    // A merge with a partition missing is refused: the merge Job fails (exit 2).
    std::fs::remove_dir_all(cluster.claim("docsweep-partitions").join("part-2")).unwrap();
    let (code, stderr) = pod.run(None);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(on_exit(&merge, 2).as_deref(), Some("FailJob"));
}

#[test]
fn the_cron_job_sweeps_continues_after_an_interruption_and_removes_its_checkpoint() {
    let cluster = Cluster::new();
    let cron = document("cronjob.yaml", "CronJob");
    // The Job a CronJob creates is named <cronjob>-<scheduled time in minutes>.
    let job = format!("{}-29420790", string(&cron["metadata"]["name"], "name"));
    let pod = Pod::new(&cluster, &cron, &job, None);
    pod.map_config_paths();
    let single = single_run(&cluster, &pod);
    let claim = cluster.claim("docsweep-nightly");
    let checkpoint = claim.join(format!("{job}.ckpt"));
    assert!(
        pod.args
            .contains(&checkpoint.to_string_lossy().into_owned()),
        "the checkpoint is on the claim, named after the Job: {:?}",
        pod.args
    );
    let latest = claim.join("latest");

    let (code, stderr) = pod.run(None);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(on_exit(&cron, 1).as_deref(), Some("FailJob"));
    assert!(
        !checkpoint.exists(),
        "a completed sweep removes its checkpoint"
    );
    assert_eq!(timeless(&latest), timeless(&single));
    assert_eq!(
        read(&latest.join("violations.csv")),
        read(&single.join("violations.csv"))
    );
    for f in ["report.html", "junit.xml"] {
        assert!(latest.join(f).is_file(), "{f}");
    }
    assert!(read(&claim.join("docsweep.prom")).contains("docsweep_status 1"));

    // Killed part-way (like an evicted pod), the next pod of the Job runs the same
    // command and continues from the checkpoint to the same result.
    std::fs::remove_dir_all(&latest).unwrap();
    let (code, _) = pod.run(Some("partial.after:1"));
    assert_eq!(code, None, "the first pod should have been killed");
    assert!(checkpoint.is_file(), "the checkpoint outlives the pod");
    let (code, stderr) = pod.run(None);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("continuing from the checkpoint"),
        "{stderr}"
    );
    assert!(!checkpoint.exists());
    assert_eq!(timeless(&latest), timeless(&single));
    assert_eq!(
        read(&latest.join("violations.csv")),
        read(&single.join("violations.csv"))
    );
}
