//! No import cycle in the harness: the modules of `src/` and `steps/` (one per file), and the
//! bench's (`benches/play/`), form a graph whose edges are the `use`s and paths between them,
//! and that graph has no cycle. A `mod.rs` is a table of contents: it declares its children
//! and re-exports what they define, so a child reaching its sibling through the parent's
//! re-export is an edge to the sibling, not to the parent.
//!
//! The reader is lexical (comments and string literals removed, `use` trees expanded, paths
//! resolved to the longest module prefix), which is what the layout here needs; a cycle it
//! reports names the files and the edges that close it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir` (relative to the root), fixtures and binaries left out.
fn files(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if !matches!(
                    p.file_name().and_then(|n| n.to_str()),
                    Some("fixtures" | "bin")
                ) {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join(dir), &mut out);
    out.sort();
    out
}

/// `src/runner/mod.rs` → `runner`; `steps/world.rs` → `steps::world` (the crate's `steps`
/// module is that folder); `benches/play/main.rs` → the bench's root.
fn module_of(file: &Path, base: &str) -> Module {
    let rel = file.strip_prefix(root().join(base)).unwrap();
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    if base == "steps" {
        parts.insert(0, "steps".into());
    }
    parts
}

/// Source without comments and string contents.
fn code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i += 2;
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal ('x', '\n', '\''); lifetimes have no closing quote.
            let end = b[i + 1..]
                .iter()
                .skip(1)
                .position(|&c| c == b'\'')
                .map_or(b.len(), |p| i + 2 + p);
            i = end + 1;
            out.push_str("' '");
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Inline modules (`mod tests { … }`) belong to their file: inside one, `super::` is the
/// file's own module, so it is rewritten to `self::`.
fn inline_modules_folded(code: &str) -> String {
    let mut out = code.to_owned();
    let mut from = 0;
    while let Some(at) = out[from..].find("mod ").map(|i| from + i) {
        from = at + 4;
        let rest = &out[from..];
        let name_len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let after = rest[name_len..].trim_start();
        if name_len == 0 || !after.starts_with('{') {
            continue;
        }
        let open = from + name_len + (rest[name_len..].len() - after.len());
        let mut depth = 0;
        let mut close = out.len();
        for (i, c) in out[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = open + i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let body = out[open..close].replace("super::", "self::");
        out.replace_range(open..close, &body);
    }
    out
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.to_owned()];
    };
    let (prefix, body) = (&tree[..open], &tree[open + 1..tree.len() - 1]);
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |x| format!("{prefix}{x}")))
        .collect()
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(|s| s.split(" as ").next().unwrap_or(s).trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `mod x;` children declared in a file.
fn children(code: &str) -> BTreeSet<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// `use` trees of a file, expanded.
fn uses(code: &str, public_only: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        let word_start = at == 0
            || !before
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let Some(end) = rest[at..].find(';') else {
            break;
        };
        let public = before.trim_end().ends_with("pub") || before.trim_end().ends_with(')');
        if word_start && (!public_only || public) {
            out.extend(expand(&rest[at + 4..at + end]));
        }
        rest = &rest[at + end..];
    }
    out
}

struct Graph {
    modules: BTreeMap<Module, String>,
    edges: BTreeMap<Module, BTreeSet<Module>>,
}

fn graph(bases: &[&str]) -> Graph {
    let mut modules = BTreeMap::new();
    let mut texts = BTreeMap::new();
    for base in bases {
        for f in files(base) {
            let m = module_of(&f, base);
            let rel = f.strip_prefix(root()).unwrap().display().to_string();
            texts.insert(
                m.clone(),
                inline_modules_folded(&code(&std::fs::read_to_string(&f).unwrap())),
            );
            modules.insert(m, rel);
        }
    }
    graph_of(modules, &texts)
}

/// The graph of `modules` (module → its file) whose code (comments and strings removed) is
/// `texts`.
fn graph_of(modules: BTreeMap<Module, String>, texts: &BTreeMap<Module, String>) -> Graph {
    // What each module re-exports (`pub use child::Item`), by the item's name.
    let mut reexports: BTreeMap<Module, BTreeMap<String, Module>> = BTreeMap::new();
    for (m, text) in texts {
        let kids = children(text);
        for path in uses(text, true) {
            let segs = segments(&path);
            let Some(name) = path
                .rsplit(" as ")
                .next()
                .map(|n| n.rsplit("::").next().unwrap_or_default().trim().to_owned())
            else {
                continue;
            };
            let target = if segs.first().is_some_and(|s| kids.contains(s)) {
                Some([m.clone(), vec![segs[0].clone()]].concat())
            } else if segs.first().is_some_and(|s| s == "crate") {
                (1..segs.len())
                    .rev()
                    .map(|n| segs[1..n].to_vec())
                    .find(|p| modules.contains_key(p))
            } else {
                None
            };
            if let Some(t) = target {
                reexports.entry(m.clone()).or_default().insert(name, t);
            }
        }
    }
    let resolve = |from: &Module, kids: &BTreeSet<String>, path: &str| -> Option<Module> {
        let segs = segments(path);
        let first = segs.first()?;
        let abs: Vec<String> = match first.as_str() {
            "crate" => segs[1..].to_vec(),
            "super" => {
                let mut base = from.clone();
                let mut s = &segs[..];
                while s.first().is_some_and(|x| x == "super") {
                    base.pop();
                    s = &s[1..];
                }
                [base, s.to_vec()].concat()
            }
            "self" => [from.clone(), segs[1..].to_vec()].concat(),
            f if kids.contains(f) => [from.clone(), segs.clone()].concat(),
            _ => return None,
        };
        let n = (0..=abs.len())
            .rev()
            .find(|&n| modules.contains_key(&abs[..n]))?;
        let m = abs[..n].to_vec();
        match abs.get(n).and_then(|item| reexports.get(&m)?.get(item)) {
            Some(defined) => Some(defined.clone()),
            None => Some(m),
        }
    };
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, text) in texts {
        let kids = children(text);
        let mut to = BTreeSet::new();
        for path in uses(text, false) {
            to.extend(resolve(m, &kids, &path));
        }
        // Paths written inline: `crate::a::b`, `super::x`, `self::y`.
        for (at, _) in text.match_indices("::") {
            let start = text[..at]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |i| i + 1);
            let end = text[at..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(text.len(), |i| at + i);
            let path = &text[start..end];
            // A path ending in `::` opens a `use` tree (`super::{a, b}`), read above.
            if !path.ends_with("::")
                && ["crate::", "super::", "self::"]
                    .iter()
                    .any(|p| path.starts_with(p))
            {
                to.extend(resolve(m, &kids, path));
            }
        }
        to.remove(m);
        edges.insert(m.clone(), to);
    }
    Graph { modules, edges }
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(g: &Graph) -> Vec<Vec<Module>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.g.edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

fn describe(g: &Graph, comps: &[Vec<Module>]) -> String {
    let mut out = String::new();
    for comp in comps {
        out.push_str("a cycle among:\n");
        for m in comp {
            let to: Vec<&str> = g.edges[m]
                .iter()
                .filter(|t| comp.contains(t))
                .map(|t| g.modules[t].as_str())
                .collect();
            out.push_str(&format!("  {} uses {}\n", g.modules[m], to.join(", ")));
        }
    }
    out
}

#[test]
fn the_harness_and_its_steps_have_no_import_cycle() {
    let g = graph(&["src", "steps"]);
    assert!(
        g.modules.len() > 50,
        "read only {} modules",
        g.modules.len()
    );
    let comps = cycles(&g);
    assert!(comps.is_empty(), "{}", describe(&g, &comps));
}

/// The same graph between top-level modules (`steps`, `runner`, `stack`, …): a layer never
/// reaches back into one that uses it, even through files that form no cycle themselves.
#[test]
fn the_harness_modules_form_layers() {
    let files = graph(&["src", "steps"]);
    let mut modules = BTreeMap::new();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, to) in &files.edges {
        let top: Module = m.iter().take(1).cloned().collect();
        modules.insert(top.clone(), format!("{}::", top.join("")));
        let entry = edges.entry(top.clone()).or_default();
        for t in to {
            let t: Module = t.iter().take(1).cloned().collect();
            if t != top {
                entry.insert(t);
            }
        }
    }
    let g = Graph { modules, edges };
    let comps = cycles(&g);
    assert!(comps.is_empty(), "{}", describe(&g, &comps));
}

#[test]
fn the_bench_has_no_import_cycle() {
    let g = graph(&["benches/play"]);
    assert!(g.modules.len() > 5, "read only {} modules", g.modules.len());
    let comps = cycles(&g);
    assert!(comps.is_empty(), "{}", describe(&g, &comps));
}

/// The reader finds what it is there to find: a child reaching its sibling through the
/// parent's re-export is no cycle; a child using an item the parent itself defines is one.
#[test]
fn the_reader_finds_a_cycle_and_sees_through_re_exports() {
    let module = |m: &[&str]| -> Module { m.iter().map(|s| s.to_string()).collect() };
    let read = |files: &[(&[&str], &str)]| {
        let modules = files
            .iter()
            .map(|(m, _)| (module(m), m.join("/")))
            .collect();
        let texts = files
            .iter()
            .map(|(m, t)| (module(m), inline_modules_folded(&code(t))))
            .collect();
        graph_of(modules, &texts)
    };
    let parent = "mod x;\nmod y;\npub use x::X;\npub use y::Y;\nconst MINE: u8 = 1;\n";
    let g = read(&[
        (&[], "pub mod a;\npub mod b;\n"),
        (&["a"], parent),
        (&["a", "x"], "use super::Y;\npub struct X;\n"),
        (
            &["a", "y"],
            "pub struct Y;\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        ),
        (&["b"], "use crate::a::X; // crate::b::Z in a comment\n"),
    ]);
    assert!(cycles(&g).is_empty(), "{}", describe(&g, &cycles(&g)));
    assert!(g.edges[&module(&["a", "x"])].contains(&module(&["a", "y"])));
    assert!(g.edges[&module(&["b"])].contains(&module(&["a", "x"])));
    let g = read(&[
        (&[], "pub mod a;\n"),
        (&["a"], parent),
        (&["a", "x"], "pub struct X;\n"),
        (&["a", "y"], "pub struct Y;\nfn f() -> u8 { super::MINE }\n"),
    ]);
    let found = cycles(&g);
    assert_eq!(found, vec![vec![module(&["a"]), module(&["a", "y"])]]);
}

/// Every HTTP client of the project is built by `rocky::http::client_builder`, whose pool
/// lets go of an idle connection before our servers close it (`rocky::http::CLIENT_POOL_IDLE`
/// under `HEADER_READ`): a client that keeps it longer can write a request on a connection
/// the server is closing and lose it with no answer (a 502 to a healthy worker, found by the
/// model tester). The bin folders are read too; `code` drops comments and string literals.
#[test]
fn every_http_client_lets_idle_connections_go_before_the_server_does() {
    fn all_rs(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                all_rs(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut sources = Vec::new();
    for dir in [
        "rocky/src",
        "rocky/tests",
        "rocky/benches",
        "src",
        "steps",
        "benches",
        "tests",
    ] {
        all_rs(&root().join(dir), &mut sources);
    }
    assert!(sources.len() > 50, "read {} files", sources.len());
    let builder = root().join("rocky/src/http.rs");
    let mut offenders = Vec::new();
    for file in sources.iter().filter(|f| **f != builder) {
        let text = code(&std::fs::read_to_string(file).expect("a source file reads"));
        // `Client::new(` as a path of its own (`reqwest::Client::new(`), not `HearthClient::new(`.
        for needle in ["Client::new(", "Client::builder("] {
            let bare = text.match_indices(needle).any(|(at, _)| {
                !text[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if bare {
                offenders.push(format!("{} ({needle}…)", file.display()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "HTTP clients built without rocky::http::client_builder: {offenders:?}"
    );
}
