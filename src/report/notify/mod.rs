//! Notification hooks: `[[notify]]` in docsweep.toml, run after the report is written.
//!
//! ```toml
//! [[notify]]
//! on = ["findings", "failed"]        # clean | warn | findings | failed | always | new
//! webhook_env = "SLACK_WEBHOOK_URL"  # or webhook = "https://…"; or command = ["prog", "arg"]
//! format = "slack"                   # json (the default) | slack | pagerduty
//! # routing_key_env = "PD_ROUTING_KEY"   # pagerduty: the Events API v2 routing key
//! timeout = 10                       # seconds per attempt
//! retries = 3                        # more attempts after a failure, with backoff
//! backoff_ms = 500                   # the first delay; doubled each time
//! required = false                   # true: a hook that fails makes the run exit 3
//! ```
//!
//! `new` fires when some check of some collection has new findings since the previous run
//! (`since_previous` in report.json, see `report::trend`: `new` > 0). Without a previous
//! report to compare with, every finding is new: it fires as `findings` does.
//!
//! A `command` runs without a shell, with the terminal summary on its standard input and
//! `DOCSWEEP_REPORT` (the path of report.json), `DOCSWEEP_STATUS` and `DOCSWEEP_SOURCE`
//! (password masked) in its environment; it fails when it exits non-zero or outlives its
//! timeout. A webhook POSTs JSON and fails on anything but a 2xx answer (redirects are not
//! followed); a 4xx other than 408 and 429 is not retried. Webhook URLs and keys are
//! secrets: every message shows a URL as `scheme://host/…` at most.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Report, Status};

mod deliver;
mod payload;

pub use deliver::run;
pub use payload::payloads;

/// `[[notify]]` as written in docsweep.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    pub on: Vec<String>,
    pub command: Option<Vec<String>>,
    pub webhook: Option<String>,
    pub webhook_env: Option<String>,
    pub format: Option<String>,
    pub routing_key_env: Option<String>,
    pub timeout: Option<toml::Value>,
    pub retries: Option<u32>,
    pub backoff_ms: Option<u64>,
    pub required: Option<bool>,
}

/// A run's outcome a hook can fire on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Clean,
    Warn,
    Findings,
    Failed,
    Always,
    /// New findings since the previous run (some check's `new` > 0); without a previous
    /// report, every finding is new: as `Findings`.
    New,
}

impl Event {
    const NAMES: [(&'static str, Event); 6] = [
        ("clean", Event::Clean),
        ("warn", Event::Warn),
        ("findings", Event::Findings),
        ("failed", Event::Failed),
        ("always", Event::Always),
        ("new", Event::New),
    ];

    fn parse(s: &str) -> Option<Event> {
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|(_, e)| *e)
    }

    /// Does this event fire for the report? `new` looks at `since_previous`.
    fn fires(self, report: &super::Report) -> bool {
        match self {
            Event::New => super::trend::has_new(report),
            e => e.fires_on(report.status),
        }
    }

    /// Does this event fire on a status? (`new` as `findings`: without a comparison.)
    fn fires_on(self, status: Status) -> bool {
        match self {
            Event::Always => true,
            Event::Clean => status == Status::Clean,
            Event::Warn => status == Status::Warn,
            Event::Findings | Event::New => status == Status::Findings,
            Event::Failed => status == Status::Failed,
        }
    }
}

/// The body a webhook POSTs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Slack,
    PagerDuty,
}

/// Where a hook sends.
#[derive(Clone, PartialEq)]
pub enum Target {
    Command(Vec<String>),
    Webhook {
        url: String,
        format: Format,
        routing_key: Option<String>,
    },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL nor the key: they are secrets.
        f.write_str(&self.describe())
    }
}

impl Target {
    /// For messages: the program, or the webhook's masked URL.
    pub fn describe(&self) -> String {
        match self {
            Target::Command(argv) => format!("command {}", argv.first().map_or("", |s| s)),
            Target::Webhook { url, .. } => format!("webhook {}", mask_url(url)),
        }
    }
}

/// One validated hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    /// `notify[i]`, for messages.
    pub name: String,
    pub on: Vec<Event>,
    pub target: Target,
    pub timeout: Duration,
    pub retries: u32,
    pub backoff: Duration,
    pub required: bool,
}

/// A URL as messages may show it: `scheme://host[:port]/…`, without user info, path or
/// query (which usually hold the token).
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let more = if end < rest.len() && rest.len() > end + 1 {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{more}")
}

/// `message` with `url` and its path and query replaced by the masked form.
fn scrub(message: &str, url: &str) -> String {
    let mut m = message.replace(url, &mask_url(url));
    if let Some((_, rest)) = url.split_once("://") {
        if let Some(i) = rest.find(['/', '?', '#']) {
            let tail = &rest[i..];
            if tail.len() > 1 {
                m = m.replace(tail, "/…");
            }
        }
    }
    m
}

fn env_var(name: &str, key: &str) -> Result<String, String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v.trim().to_string()),
        _ => Err(format!(
            "{key} = {name:?}, but the environment variable {name} is not set"
        )),
    }
}

/// Validates `[[notify]]` entries; an error names the key (`notify[0].format: …`).
pub fn hooks(config: &[NotifyConfig]) -> Result<Vec<Hook>, String> {
    config.iter().enumerate().map(|(i, c)| hook(i, c)).collect()
}

fn hook(i: usize, c: &NotifyConfig) -> Result<Hook, String> {
    let name = format!("notify[{i}]");
    let key = |k: &str| format!("{name}.{k}");
    let on = events(&c.on, &key("on"))?;
    let target = target(c, &name)?;
    let timeout = timeout(c.timeout.as_ref(), &key("timeout"))?;
    let retries = c.retries.unwrap_or(3);
    if retries > 10 {
        return Err(format!("{}: {retries}: at most 10", key("retries")));
    }
    let backoff_ms = c.backoff_ms.unwrap_or(500);
    if backoff_ms > 60_000 {
        return Err(format!(
            "{}: {backoff_ms}: at most 60000",
            key("backoff_ms")
        ));
    }
    Ok(Hook {
        name,
        on,
        target,
        timeout,
        retries,
        backoff: Duration::from_millis(backoff_ms),
        required: c.required.unwrap_or(false),
    })
}

/// `on`: at least one event, each known. `key` is `notify[i].on`.
fn events(on: &[String], key: &str) -> Result<Vec<Event>, String> {
    if on.is_empty() {
        return Err(format!(
            "{key}: empty: name when the hook fires (clean, warn, findings, failed, always, new)"
        ));
    }
    on.iter()
        .map(|e| {
            Event::parse(e).ok_or_else(|| {
                format!(
                    "{key}: unknown event {e:?} (expected clean, warn, findings, failed, always or new)"
                )
            })
        })
        .collect()
}

/// Exactly one of `command`, `webhook` and `webhook_env`, and what goes with it.
fn target(c: &NotifyConfig, name: &str) -> Result<Target, String> {
    let given: Vec<&str> = [
        ("command", c.command.is_some()),
        ("webhook", c.webhook.is_some()),
        ("webhook_env", c.webhook_env.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| *k)
    .collect();
    if given.len() != 1 {
        return Err(format!(
            "{name}: give exactly one of command, webhook and webhook_env{}",
            if given.is_empty() {
                String::new()
            } else {
                format!(" (it has {})", given.join(" and "))
            }
        ));
    }
    match &c.command {
        Some(argv) => command_target(c, argv, name),
        None => webhook_target(c, name),
    }
}

/// A command: a program, and no webhook-only keys.
fn command_target(c: &NotifyConfig, argv: &[String], name: &str) -> Result<Target, String> {
    let key = |k: &str| format!("{name}.{k}");
    if argv.first().is_none_or(|p| p.trim().is_empty()) {
        return Err(format!(
            "{}: empty: the program and its arguments, e.g. [\"notify-send\", \"docsweep\"]",
            key("command")
        ));
    }
    for k in ["format", "routing_key_env"] {
        let set = match k {
            "format" => c.format.is_some(),
            _ => c.routing_key_env.is_some(),
        };
        if set {
            return Err(format!("{}: only for webhooks", key(k)));
        }
    }
    Ok(Target::Command(argv.to_vec()))
}

/// A webhook: an http(s) URL, its format and, for pagerduty, the routing key.
fn webhook_target(c: &NotifyConfig, name: &str) -> Result<Target, String> {
    let key = |k: &str| format!("{name}.{k}");
    let url = match (&c.webhook, &c.webhook_env) {
        (Some(u), _) => u.trim().to_string(),
        (None, Some(var)) => env_var(var, &key("webhook_env"))?,
        (None, None) => {
            return Err(format!(
                "{name}: give exactly one of command, webhook and webhook_env"
            ))
        }
    };
    let which = if c.webhook.is_some() {
        key("webhook")
    } else {
        key("webhook_env")
    };
    check_url(&url).map_err(|m| format!("{which}: {m}"))?;
    let format = match c.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("slack") => Format::Slack,
        Some("pagerduty") => Format::PagerDuty,
        Some(other) => {
            return Err(format!(
                "{}: unknown format {other:?} (expected json, slack or pagerduty)",
                key("format")
            ))
        }
    };
    let routing_key = match (&c.routing_key_env, format) {
        (Some(var), Format::PagerDuty) => Some(env_var(var, &key("routing_key_env"))?),
        (None, Format::PagerDuty) => {
            return Err(format!(
                "{}: format = \"pagerduty\" needs the routing key: routing_key_env = \"VAR\"",
                key("routing_key_env")
            ))
        }
        (Some(_), _) => {
            return Err(format!(
                "{}: only for format = \"pagerduty\"",
                key("routing_key_env")
            ))
        }
        (None, _) => None,
    };
    Ok(Target::Webhook {
        url,
        format,
        routing_key,
    })
}

/// `timeout`: seconds, more than 0 and at most 3600 (10 when not given).
fn timeout(value: Option<&toml::Value>, key: &str) -> Result<Duration, String> {
    let Some(v) = value else {
        return Ok(Duration::from_secs(10));
    };
    let secs = match v {
        toml::Value::Integer(n) => *n as f64,
        toml::Value::Float(f) => *f,
        _ => f64::NAN,
    };
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err(format!(
            "{key}: {v}: expected seconds, more than 0 and at most 3600"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// An http(s) URL with a host (the message never shows the URL itself).
fn check_url(url: &str) -> Result<(), String> {
    let masked = mask_url(url);
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| format!("{masked}: not a valid URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{masked}: expected an http:// or https:// URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{masked}: the URL has no host"));
    }
    Ok(())
}

/// What a run hands its hooks.
pub struct Context<'a> {
    pub report: &'a Report,
    /// The path of report.json.
    pub report_path: &'a Path,
    /// The terminal summary, as printed.
    pub summary: &'a [u8],
}

/// What became of one hook that fired.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    /// The target, masked.
    pub target: String,
    pub attempts: u32,
    /// Why it failed (masked), or None when it succeeded.
    pub error: Option<String>,
    pub required: bool,
}

impl Outcome {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "hook": self.name, "target": self.target, "attempts": self.attempts,
            "ok": self.error.is_none(),
        });
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        if self.required {
            v["required"] = json!(true);
        }
        v
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::CollectionReport;

    fn config(text: &str) -> Vec<NotifyConfig> {
        #[derive(Deserialize)]
        struct Top {
            notify: Vec<NotifyConfig>,
        }
        toml::from_str::<Top>(text).unwrap().notify
    }

    #[test]
    fn urls_are_masked() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/secret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask_url("http://user:pw@127.0.0.1:8080/x?token=1"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(mask_url("https://example.com"), "https://example.com");
        assert_eq!(mask_url("https://example.com/"), "https://example.com");
        assert_eq!(mask_url("nonsense/secret"), "(not a URL)");
        let url = "https://h.example/services/SECRET?k=v";
        let m = scrub(&format!("bad uri: {url}; also /services/SECRET?k=v"), url);
        assert!(!m.contains("SECRET"), "{m}");
    }

    #[test]
    fn hooks_validate_and_errors_name_the_key() {
        let ok = hooks(&config(
            r#"
            [[notify]]
            on = ["findings", "new"]
            webhook = "https://hooks.example.com/T/B/secret"
            format = "slack"
            timeout = 0.5
            retries = 1
            backoff_ms = 10
            required = true
            [[notify]]
            on = ["always"]
            command = ["true"]
            "#,
        ))
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].timeout, Duration::from_millis(500));
        assert!(ok[0].required && !ok[1].required);
        assert_eq!(ok[1].retries, 3);
        assert_eq!(ok[1].timeout, Duration::from_secs(10));
        assert!(ok[0].on.iter().any(|e| e.fires_on(Status::Findings)));
        assert!(!ok[0].on.iter().any(|e| e.fires_on(Status::Warn)));
        assert!(!format!("{:?}", ok[0]).contains("secret"));
        for (text, key) in [
            ("on = []\ncommand = [\"true\"]", "notify[0].on"),
            ("on = [\"sometimes\"]\ncommand = [\"true\"]", "notify[0].on"),
            (
                "on = [\"always\"]\ncommand = [\"true\"]\nwebhook = \"https://x.example\"",
                "notify[0]: give exactly one",
            ),
            ("on = [\"always\"]", "notify[0]: give exactly one"),
            (
                "on = [\"always\"]\nwebhook = \"https://x.example\"\nformat = \"xml\"",
                "notify[0].format",
            ),
            (
                "on = [\"always\"]\nwebhook = \"ftp://x.example/secret\"",
                "notify[0].webhook",
            ),
            (
                "on = [\"always\"]\nwebhook = \"https://x.example\"\nformat = \"pagerduty\"",
                "notify[0].routing_key_env",
            ),
            (
                "on = [\"always\"]\nwebhook_env = \"DOCSWEEP_TEST_NO_SUCH_VAR\"",
                "notify[0].webhook_env",
            ),
            (
                "on = [\"always\"]\ncommand = [\"true\"]\nformat = \"json\"",
                "notify[0].format",
            ),
            ("on = [\"always\"]\ncommand = []", "notify[0].command"),
            (
                "on = [\"always\"]\ncommand = [\"true\"]\ntimeout = 0",
                "notify[0].timeout",
            ),
        ] {
            let err = hooks(&config(&format!("[[notify]]\n{text}"))).unwrap_err();
            assert!(err.starts_with(key), "{text}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    fn report(status: Status, gated: bool) -> Report {
        let mut orders = CollectionReport {
            name: "orders".into(),
            present: true,
            documents: 1000,
            ..CollectionReport::default()
        };
        orders.classes.valid = 990;
        orders.classes.invalid = 10;
        let customers = CollectionReport {
            name: "customers".into(),
            present: true,
            documents: 5,
            ..CollectionReport::default()
        };
        let mut r = Report {
            format: super::super::FORMAT,
            status,
            source: "mongodb://app:****@db.example/shop".into(),
            database: None,
            started_at: "2026-12-04T00:00:00Z".into(),
            finished_at: "2026-12-04T00:01:00Z".into(),
            error: None,
            baseline: None,
            warnings: Vec::new(),
            collections: vec![orders, customers],
            gated: false,
        };
        if gated {
            let g = super::super::gate::Gate::new(
                None,
                &["invalid=1".into()],
                &["invalid=5%".into()],
                false,
            )
            .unwrap();
            r.judge(&g);
        }
        r
    }

    #[test]
    fn payloads_say_what_warns_and_what_fails() {
        let r = report(Status::Warn, true);
        let ctx = Context {
            report: &r,
            report_path: Path::new("out/report.json"),
            summary: b"summary",
        };
        let json = &payloads(Format::Json, &ctx, None)[0];
        assert_eq!(json["status"], "warn");
        assert_eq!(json["collections"][0]["verdict"], "warn");
        assert_eq!(json["collections"][0]["counts"]["invalid"], 10);
        assert_eq!(json["collections"][1]["verdict"], "clean");
        let text = payloads(Format::Slack, &ctx, None)[0]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.contains("*WARN*") && text.contains("orders (1,000 documents): warn: invalid 10"),
            "{text}"
        );
        assert!(
            text.contains("1 collection without findings") && text.ends_with("out/report.json"),
            "{text}"
        );
        let pd = payloads(Format::PagerDuty, &ctx, Some("KEY"));
        assert_eq!(pd.len(), 1, "only the collection that warns: {pd:?}");
        assert_eq!(pd[0]["payload"]["severity"], "warning");
        assert_eq!(
            pd[0]["dedup_key"],
            "docsweep:mongodb://app:****@db.example/shop:orders"
        );

        // Without thresholds every finding fails; a failed source is one more event.
        let mut r = report(Status::Failed, false);
        r.error = Some("connection reset".into());
        let ctx = Context { report: &r, ..ctx };
        let pd = payloads(Format::PagerDuty, &ctx, Some("KEY"));
        assert_eq!(pd.len(), 2);
        assert_eq!(
            pd[0]["dedup_key"],
            "docsweep:mongodb://app:****@db.example/shop"
        );
        assert!(pd.iter().all(|e| e["payload"]["severity"] == "critical"));
        let text = payloads(Format::Slack, &ctx, None)[0]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.contains("source failed: connection reset") && text.contains("fail: invalid 10"),
            "{text}"
        );
    }
}
