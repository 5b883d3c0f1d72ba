//! Splitting the selected scenarios across CI runners: `--shard K/N` picks shard K of N,
//! disjoint and covering, the same on every runner. With `--durations FILE` (written by every
//! run) scenarios are packed longest first onto the least loaded shard, so shards end
//! together; without it every scenario weighs the same.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::catalogue::Entry;

/// Shard `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("invalid shard {s:?}: expected K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = k.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count || count > 1024 {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Seconds each scenario took last time, by test name.
pub type Durations = BTreeMap<String, f64>;

/// Reads a durations file; a missing file is no durations, a malformed one an error.
pub fn read_durations(path: &Path) -> Result<Durations, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a durations file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Durations::new()),
        Err(e) => Err(format!("failed to read {}: {e}", path.display())),
    }
}

/// Merges `new` into the file at `path` (scenarios not run this time keep their old figure).
pub fn write_durations(path: &Path, new: &BTreeMap<String, Duration>) -> Result<(), String> {
    let mut all = read_durations(path).unwrap_or_default();
    for (name, d) in new {
        all.insert(name.clone(), (d.as_secs_f64() * 1000.0).round() / 1000.0);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&all).expect("durations serialise");
    std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))
}

/// Which shard (0-based) every entry goes to: longest first onto the least loaded shard,
/// ties broken by name, so the result depends only on the names and the durations.
pub fn assign(entries: &[Entry], count: usize, durations: &Durations) -> Vec<usize> {
    let weight = |e: &Entry| durations.get(&e.name).copied().unwrap_or(1.0).max(0.0);
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| {
        weight(&entries[b])
            .total_cmp(&weight(&entries[a]))
            .then_with(|| entries[a].name.cmp(&entries[b].name))
    });
    let mut load = vec![0.0f64; count];
    let mut out = vec![0; entries.len()];
    for i in order {
        let (shard, _) = load
            .iter()
            .enumerate()
            .min_by(|(ia, a), (ib, b)| a.total_cmp(b).then(ia.cmp(ib)))
            .expect("at least one shard");
        load[shard] += weight(&entries[i]);
        out[i] = shard;
    }
    out
}

/// The entries of `shard`, in their original order.
pub fn select(entries: Vec<Entry>, shard: Shard, durations: &Durations) -> Vec<Entry> {
    let assigned = assign(&entries, shard.count, durations);
    entries
        .into_iter()
        .zip(assigned)
        .filter(|(_, s)| *s == shard.index - 1)
        .map(|(e, _)| e)
        .collect()
}

/// Longest shard ÷ the ideal (total ÷ count): 1.0 is a perfect packing.
pub fn packing_ratio(entries: &[Entry], count: usize, durations: &Durations) -> f64 {
    let weight = |e: &Entry| durations.get(&e.name).copied().unwrap_or(1.0);
    let mut load = vec![0.0; count];
    for (e, s) in entries.iter().zip(assign(entries, count, durations)) {
        load[s] += weight(e);
    }
    let total: f64 = load.iter().sum();
    let longest = load.iter().copied().fold(0.0, f64::max);
    if total == 0.0 {
        1.0
    } else {
        longest / (total / count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| Entry {
                name: format!("f::s{i:02}"),
                path: "f.feature".into(),
                line: i,
                col: 1,
                tags: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn shards_are_disjoint_covering_and_deterministic() {
        let all = entries(27);
        let mut durations = Durations::new();
        for (i, e) in all.iter().enumerate() {
            durations.insert(e.name.clone(), (i % 7) as f64 + 0.5);
        }
        for d in [Durations::new(), durations] {
            for n in 1..=5 {
                let mut seen = Vec::new();
                for k in 1..=n {
                    let shard = Shard { index: k, count: n };
                    let picked = select(all.clone(), shard, &d);
                    assert_eq!(picked, select(all.clone(), shard, &d));
                    seen.extend(picked.into_iter().map(|e| e.name));
                }
                seen.sort();
                let mut names: Vec<_> = all.iter().map(|e| e.name.clone()).collect();
                names.sort();
                assert_eq!(seen, names, "{n} shards cover every scenario exactly once");
            }
        }
    }

    #[test]
    fn packing_puts_the_long_scenarios_apart() {
        let all = entries(4);
        let d: Durations = [
            ("f::s00", 10.0),
            ("f::s01", 10.0),
            ("f::s02", 1.0),
            ("f::s03", 1.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let a = assign(&all, 2, &d);
        assert_ne!(a[0], a[1]);
        assert!((packing_ratio(&all, 2, &d) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn bad_shards_are_refused() {
        for bad in ["0/3", "4/3", "1/0", "x", "1/", "/2", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
    }
}
