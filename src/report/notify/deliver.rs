//! Delivering notifications: running a hook's command or POSTing to its webhook, with
//! retries and backoff; every failure message masks the webhook URL.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::payload::payloads;
use super::{scrub, Context, Hook, Outcome, Target};
use crate::report::format::status_word;

/// Runs every hook that fires on the report's status, in order. Failures are returned, not
/// raised: the caller reports them and decides the exit code.
pub fn run(hooks: &[Hook], ctx: &Context<'_>) -> Vec<Outcome> {
    hooks
        .iter()
        .filter(|h| h.on.iter().any(|e| e.fires(ctx.report)))
        .map(|h| run_hook(h, ctx))
        .collect()
}

fn run_hook(h: &Hook, ctx: &Context<'_>) -> Outcome {
    let mut attempts = 0;
    let result = match &h.target {
        Target::Command(argv) => with_retries(h, &mut attempts, || run_command(argv, h, ctx)),
        Target::Webhook {
            url,
            format,
            routing_key,
        } => {
            let bodies = payloads(*format, ctx, routing_key.as_deref());
            let agent = agent(h.timeout);
            let mut result = Ok(());
            for body in &bodies {
                let mut n = 0;
                result =
                    with_retries(h, &mut n, || post(&agent, url, body)).map_err(|e| scrub(&e, url));
                attempts += n;
                if result.is_err() {
                    break;
                }
            }
            result
        }
    };
    Outcome {
        name: h.name.clone(),
        target: h.target.describe(),
        attempts,
        error: result.err(),
        required: h.required,
    }
}

/// A failed attempt: whether another may succeed, and why.
struct Failure {
    retry: bool,
    message: String,
}

fn with_retries(
    h: &Hook,
    attempts: &mut u32,
    mut attempt: impl FnMut() -> Result<(), Failure>,
) -> Result<(), String> {
    let mut delay = h.backoff;
    loop {
        *attempts += 1;
        match attempt() {
            Ok(()) => return Ok(()),
            Err(f) if !f.retry || *attempts > h.retries => {
                return Err(format!(
                    "{} (after {} attempt{})",
                    f.message,
                    attempts,
                    if *attempts == 1 { "" } else { "s" }
                ))
            }
            Err(_) => {
                std::thread::sleep(delay);
                delay = delay.saturating_mul(2);
            }
        }
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("docsweep/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Result<(), Failure> {
    let bytes = serde_json::to_vec(body).map_err(|e| Failure {
        retry: false,
        message: e.to_string(),
    })?;
    match agent
        .post(url)
        .content_type("application/json")
        .send(&bytes[..])
    {
        Ok(resp) => {
            let code = resp.status().as_u16();
            if (200..300).contains(&code) {
                Ok(())
            } else {
                Err(Failure {
                    retry: !(400..500).contains(&code) || code == 408 || code == 429,
                    message: format!("HTTP {code}"),
                })
            }
        }
        Err(e) => Err(Failure {
            retry: true,
            message: e.to_string(),
        }),
    }
}

fn run_command(argv: &[String], h: &Hook, ctx: &Context<'_>) -> Result<(), Failure> {
    use std::process::{Command, Stdio};
    let fail = |retry: bool, message: String| Failure { retry, message };
    let report_path =
        std::path::absolute(ctx.report_path).unwrap_or_else(|_| ctx.report_path.to_path_buf());
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env("DOCSWEEP_REPORT", &report_path)
        .env("DOCSWEEP_STATUS", status_word(ctx.report.status))
        .env("DOCSWEEP_SOURCE", &ctx.report.source)
        .stdin(Stdio::piped())
        // The hook's output goes to stderr: stdout is the summary's.
        .stdout(Stdio::from(std::io::stderr()))
        .spawn()
        .map_err(|e| fail(false, format!("cannot run {}: {e}", argv[0])))?;
    // Written from another thread, so that a program that does not read its input cannot
    // block the run; a program that exits without reading it is no failure.
    let feeder = child.stdin.take().map(|mut stdin| {
        let summary = ctx.summary.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&summary);
        })
    });
    let deadline = Instant::now() + h.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(
                    true,
                    format!("{} timed out after {:?}", argv[0], h.timeout),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(fail(true, format!("{}: {e}", argv[0]))),
        }
    };
    if let Some(t) = feeder {
        let _ = t.join();
    }
    if status.success() {
        Ok(())
    } else {
        Err(fail(true, format!("{} exited with {status}", argv[0])))
    }
}
