//! The progress line drawn on stderr while a collection is read (a check, a baseline, a
//! snapshot): the collection, a bar, how much of it is read, documents per second and the
//! time left, in at most 80 columns whatever the names and numbers.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The widest line drawn, in columns (a classic terminal).
pub const WIDTH: usize = 80;

/// What a collection's progress is counted in: the bytes of its file (dumps, archives,
/// exports; the ETA is exact) or its documents against the server's
/// `estimatedDocumentCount` (live; the ETA is as good as the estimate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Docs,
}

/// A progress line, hidden unless drawing was asked for.
#[derive(Debug, Clone)]
pub struct Meter {
    pb: ProgressBar,
    label: String,
    unit: Unit,
    total: u64,
}

impl Meter {
    pub fn hidden() -> Meter {
        Meter {
            pb: ProgressBar::hidden(),
            label: String::new(),
            unit: Unit::Bytes,
            total: 0,
        }
    }

    /// A line for reading `label` (e.g. `orders` or `baseline orders`) of `total` units.
    pub fn new(show: bool, label: &str, unit: Unit, total: u64) -> Meter {
        if !show {
            return Meter::hidden();
        }
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{msg}") {
            pb.set_style(style);
        }
        let m = Meter {
            pb,
            label: label.to_string(),
            unit,
            total,
        };
        m.update(0, 0);
        m
    }

    /// `position` units read (bytes, or documents for [`Unit::Docs`]), `docs` documents.
    pub fn update(&self, position: u64, docs: u64) {
        if self.pb.is_hidden() {
            return;
        }
        self.pb.set_position(position);
        self.pb.set_message(progress_line(
            &self.label,
            self.unit,
            position,
            self.total,
            docs,
            self.pb.elapsed(),
        ));
    }

    pub fn finish(&self) {
        self.pb.finish_and_clear();
    }
}

/// One progress line of at most [`WIDTH`] columns:
/// `orders [=====>      ] 41% 12.3M/30.0M B 25.4k docs/s eta 0:42`. The label is
/// shortened (`…`) before anything else; the bar takes what is left.
pub fn progress_line(
    label: &str,
    unit: Unit,
    done: u64,
    total: u64,
    docs: u64,
    elapsed: Duration,
) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { docs as f64 / secs } else { 0.0 };
    // The share of the work done: bytes for files, documents against the estimate live
    // (which may be exceeded: the estimate is a count of the collection's metadata).
    let fraction = if total > 0 {
        (done as f64 / total as f64).min(1.0)
    } else {
        0.0
    };
    let eta = if done > 0 && total > done && secs > 0.0 {
        let left = secs * (total - done) as f64 / done as f64;
        format!("eta {}", clock(left))
    } else if total > 0 && done >= total {
        "eta 0:00".to_string()
    } else {
        "eta ?".to_string()
    };
    let amount = match unit {
        Unit::Bytes => format!("{}B/{}B", si(done as f64), si(total as f64)),
        Unit::Docs if total > 0 => format!("{}/~{} docs", si(done as f64), si(total as f64)),
        Unit::Docs => format!("{} docs", si(done as f64)),
    };
    let pct = if total > 0 {
        format!("{:>3}%", (fraction * 100.0).floor() as u64)
    } else {
        "  ?%".to_string()
    };
    let tail = format!("{pct} {amount} {} docs/s {eta}", si(rate));
    // label + " [" + bar + "] " + tail; the bar gets at least 10 columns, the label at most
    // 24 and what the bar leaves.
    let tail_w = tail.chars().count();
    let fixed = 4 + tail_w;
    let min_bar = 10;
    let label_room = WIDTH.saturating_sub(fixed + min_bar).min(24);
    let label = shorten(label, label_room);
    let bar_w = WIDTH
        .saturating_sub(fixed + label.chars().count())
        .clamp(0, 40);
    let filled = ((fraction * bar_w as f64) as usize).min(bar_w);
    let mut bar = "=".repeat(filled);
    if filled < bar_w {
        bar.push('>');
        bar.push_str(&" ".repeat(bar_w - filled - 1));
    }
    let line = format!("{label} [{bar}] {tail}");
    // The tail itself is bounded (numbers are abbreviated), so this only guards.
    shorten(&line, WIDTH)
}

/// `text` in at most `max` characters, ending in `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// A number in at most 6 characters: `999`, `12.3k`, `4.56M`, … up to `E`.
fn si(v: f64) -> String {
    const UNITS: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let mut v = v.max(0.0);
    let mut i = 0;
    while v >= 999.5 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0}")
    } else if v < 9.995 {
        format!("{v:.2}{}", UNITS[i])
    } else if v < 99.95 {
        format!("{v:.1}{}", UNITS[i])
    } else {
        format!("{v:.0}{}", UNITS[i])
    }
}

/// Seconds as `m:ss` or `h:mm:ss` (capped at 999 hours).
fn clock(secs: f64) -> String {
    let s = secs.clamp(0.0, 999.0 * 3600.0) as u64;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn width(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn a_progress_line_never_exceeds_80_columns() {
        let long = "a_collection_name_that_goes_on_and_on_and_on_for_ever_and_ever_and_more";
        let wide = "коллекция_заказов_с_очень_длинным_именем_и_ещё_длиннее";
        let mut lines = Vec::new();
        for label in ["o", "orders", long, wide, &format!("baseline {long}")] {
            for unit in [Unit::Bytes, Unit::Docs] {
                for (done, total) in [
                    (0, 0),
                    (0, u64::MAX),
                    (1, 2),
                    (u64::MAX / 2, u64::MAX),
                    (u64::MAX, u64::MAX),
                    (u64::MAX, 0),
                    (123_456_789_012, 987_654_321_098),
                    (5_000, 1_000),
                ] {
                    for (docs, secs) in [(0, 0.0), (1, 0.001), (u64::MAX, 0.5), (10_000, 3600.0)] {
                        lines.push(progress_line(
                            label,
                            unit,
                            done,
                            total,
                            docs,
                            Duration::from_secs_f64(secs),
                        ));
                    }
                }
            }
        }
        for l in &lines {
            assert!(width(l) <= WIDTH, "{} columns: {l}", width(l));
        }
        // What a line says.
        let l = progress_line(
            "orders",
            Unit::Bytes,
            12_300_000,
            30_000_000,
            25_400,
            Duration::from_secs(10),
        );
        assert!(l.starts_with("orders ["), "{l}");
        assert!(
            l.contains(" 41% 12.3MB/30.0MB 2.54k docs/s eta 0:14"),
            "{l}"
        );
        let l = progress_line(
            "orders",
            Unit::Docs,
            500,
            2_000,
            500,
            Duration::from_secs(5),
        );
        assert!(
            l.contains(" 25% 500/~2.00k docs 100 docs/s eta 0:15"),
            "{l}"
        );
        // A long name is shortened, never the numbers.
        let l = progress_line(long, Unit::Docs, 1, 2, 1, Duration::from_secs(1));
        assert!(l.contains('…') && l.ends_with("eta 0:01"), "{l}");
        assert_eq!(si(999.0), "999");
        assert_eq!(si(1_000.0), "1.00k");
        assert_eq!(si(u64::MAX as f64), "18.4E");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
