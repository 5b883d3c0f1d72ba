//! Statistics and the table: medians and spreads, and the rows the bench prints as one
//! Markdown table.

use std::time::Duration;

/// A named part of a measurement and how to read it from a sample: a breakdown row.
pub(crate) type Part<T> = (&'static str, fn(&T) -> Duration);

pub(crate) fn median(samples: impl Iterator<Item = Duration>) -> Duration {
    let mut v: Vec<Duration> = samples.collect();
    v.sort_unstable();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

pub(crate) fn median_f64(samples: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = samples.collect();
    v.sort_unstable_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn fmt_ms(d: Duration) -> String {
    format_ms(ms(d))
}

pub(crate) fn format_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

pub(crate) fn spread(samples: impl Iterator<Item = Duration>) -> String {
    let v: Vec<f64> = samples.map(ms).collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    format!("{}–{}", format_ms(lo), format_ms(hi))
}

pub(crate) fn verdict(met: bool) -> String {
    if met { "met" } else { "MISSED" }.into()
}

pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) median: String,
    pub(crate) spread: String,
    pub(crate) ratio: String,
    pub(crate) target: String,
    pub(crate) verdict: String,
}

#[derive(Default)]
pub(crate) struct Table {
    pub(crate) rows: Vec<Row>,
}

impl Table {
    pub(crate) fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub(crate) fn section(&mut self, title: &str) {
        self.rows.push(Row {
            name: format!("**{title}**"),
            median: String::new(),
            spread: String::new(),
            ratio: String::new(),
            target: String::new(),
            verdict: String::new(),
        });
    }

    pub(crate) fn duration<T>(
        &mut self,
        name: &str,
        samples: &[T],
        f: impl Fn(&T) -> Duration,
        target: &str,
        note: &str,
    ) {
        self.row(Row {
            name: name.into(),
            median: fmt_ms(median(samples.iter().map(&f))),
            spread: spread(samples.iter().map(&f)),
            ratio: note.into(),
            target: target.into(),
            verdict: String::new(),
        });
    }

    /// A breakdown row under the previous one.
    pub(crate) fn part<T>(&mut self, name: &str, samples: &[T], f: impl Fn(&T) -> Duration) {
        self.row(Row {
            name: format!("  ↳ {name}"),
            median: fmt_ms(median(samples.iter().map(&f))),
            spread: spread(samples.iter().map(&f)),
            ratio: String::new(),
            target: String::new(),
            verdict: String::new(),
        });
    }

    pub(crate) fn part_ms<T>(&mut self, name: &str, samples: &[T], f: impl Fn(&T) -> f64) {
        self.part(name, samples, |s| Duration::from_secs_f64(f(s) / 1000.0));
    }

    pub(crate) fn rate(&mut self, name: &str, samples: &[f64], target: f64) {
        let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = samples.iter().copied().fold(0.0, f64::max);
        let med = median_f64(samples.iter().copied());
        self.row(Row {
            name: name.into(),
            median: format_rate(med),
            spread: format!("{}–{}", format_rate(lo), format_rate(hi)),
            ratio: String::new(),
            target: if target > 0.0 {
                format!("≥ {}", format_rate(target))
            } else {
                String::new()
            },
            verdict: if target > 0.0 {
                verdict(med >= target)
            } else {
                String::new()
            },
        });
    }

    pub(crate) fn render(&self) -> String {
        let header = [
            "measurement",
            "median",
            "min–max",
            "ratio / note",
            "target",
            "",
        ];
        let cells = |r: &Row| {
            [
                r.name.clone(),
                r.median.clone(),
                r.spread.clone(),
                r.ratio.clone(),
                r.target.clone(),
                r.verdict.clone(),
            ]
        };
        let mut width = header.map(|h| h.chars().count());
        for r in &self.rows {
            for (w, c) in width.iter_mut().zip(cells(r)) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: [String; 6]| {
            let mut s = String::from("|");
            for (c, w) in cells.iter().zip(width) {
                s.push(' ');
                s.push_str(c);
                s.push_str(&" ".repeat(w - c.chars().count()));
                s.push_str(" |");
            }
            s.push('\n');
            s
        };
        let mut out = line(header.map(String::from));
        out.push_str(&line(width.map(|w| "-".repeat(w))));
        for r in &self.rows {
            out.push_str(&line(cells(r)));
        }
        out
    }
}

pub(crate) fn format_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else {
        format!("{:.0} k/s", per_s / 1e3)
    }
}
