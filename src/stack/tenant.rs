//! One scenario's part of a shared stack ([`super::shared`]): the names its workspaces have on
//! the shared console and hearth, and the way back to the names the scenario used.
//!
//! Scenarios sharing a console would collide on their workspace names (two scenarios both
//! provision `x`), so each has a prefix of its own, `w<n>-` (`n` counts the tenants of this
//! process): the scenario's `x` is `w7-x` on the console, in hearth, on its Docker objects'
//! `rocky.workspace` label and in the shared HATCH log. Everything the scenario reads back (the
//! console's answers, its slice of the log, hearth's reasons) has the prefix taken out again,
//! so steps, gap reports and snapshots read exactly as on a stack of its own.
//!
//! Only a valid name is prefixed: an invalid one (`Bad-Slug`, `-ws4`) is sent as it is, so the
//! console refuses it for the same reason as on a stack of its own.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use rocky::hatch::Record;
use serde_json::Value;

/// The tenants made by this process so far: each one's number.
static TENANTS: AtomicU64 = AtomicU64::new(0);

/// One scenario's part of a shared stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    prefix: String,
}

impl Default for Tenant {
    fn default() -> Tenant {
        Tenant::new()
    }
}

/// Can `c` be part of a slug (`[a-z0-9-]`)?
fn slug_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

impl Tenant {
    /// A tenant with a prefix no other tenant of this process has.
    pub fn new() -> Tenant {
        let n = TENANTS.fetch_add(1, Ordering::Relaxed) + 1;
        Tenant {
            prefix: format!("w{n}-"),
        }
    }

    /// `w<n>-`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name workspace `name` has on the shared stack: prefixed when `name` is a valid
    /// slug, as it is otherwise (the console refuses it either way). A valid name too long to
    /// take the prefix panics, naming the limit: it would collide with another scenario's.
    pub fn slug(&self, name: &str) -> String {
        if rocky::slug::validate(name).is_err() {
            return name.to_owned();
        }
        let slug = format!("{}{name}", self.prefix);
        if rocky::slug::validate(&slug).is_err() {
            panic!(
                "workspace name {name:?} is too long for a shared stack: there every workspace name gets a prefix of its scenario's ({:?}), and the whole must still be a slug of at most 32 characters; use a shorter name",
                self.prefix
            );
        }
        slug
    }

    /// The scenario's name for `slug`, when `slug` is one of this tenant's workspaces.
    pub fn name_of<'a>(&self, slug: &'a str) -> Option<&'a str> {
        slug.strip_prefix(self.prefix.as_str())
            .filter(|name| !name.is_empty())
    }

    /// `text` with this tenant's prefix taken out of every workspace name in it: an
    /// occurrence of the prefix counts only at the start of a name (not after a letter, digit
    /// or hyphen) and before a name's first character.
    pub fn unshare<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !text.contains(self.prefix.as_str()) {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut previous: Option<char> = None;
        while let Some(at) = rest.find(self.prefix.as_str()) {
            let before = rest[..at].chars().next_back().or(previous);
            let after = rest[at + self.prefix.len()..].chars().next();
            out.push_str(&rest[..at]);
            if before.is_some_and(slug_char) || !after.is_some_and(slug_char) {
                out.push_str(&self.prefix);
            }
            previous = self.prefix.chars().next_back();
            rest = &rest[at + self.prefix.len()..];
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    /// [`Tenant::unshare`] on every string (and object key) inside `v`.
    pub fn unshare_value(&self, v: &mut Value) {
        match v {
            Value::String(s) => {
                if let Cow::Owned(o) = self.unshare(s) {
                    *s = o;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.unshare_value(x)),
            Value::Object(o) => {
                let entries = std::mem::take(o);
                for (k, mut x) in entries {
                    self.unshare_value(&mut x);
                    o.insert(self.unshare(&k).into_owned(), x);
                }
            }
            _ => {}
        }
    }

    /// The tenant's slice of a shared HATCH log: the records of its own workspaces alone, in
    /// log order, each with the names the scenario used (`seq` stays the shared log's).
    pub fn slice(&self, records: Vec<Record>) -> Vec<Record> {
        records
            .into_iter()
            .filter_map(|mut r| {
                let name = self.name_of(r.subject.workspace.as_deref()?)?.to_owned();
                r.subject.workspace = Some(name);
                self.unshare_value(&mut r.data);
                Some(r)
            })
            .collect()
    }

    /// A raw request body with the workspace named by each `"slug"` or `"workspace"` field
    /// given its shared name, byte for byte otherwise (so a malformed or odd body is refused
    /// for the same reason, at the same column, as on a stack of its own).
    pub fn slug_in_body(&self, body: &str) -> String {
        let mut out = String::with_capacity(body.len() + 8);
        let mut rest = body;
        loop {
            let next = ["\"slug\"", "\"workspace\""]
                .iter()
                .filter_map(|key| rest.find(key).map(|at| (at, key.len())))
                .min();
            let Some((at, key_len)) = next else { break };
            let after_key = at + key_len;
            out.push_str(&rest[..after_key]);
            rest = &rest[after_key..];
            // `"key" : "value"`: only a plain string value (no escapes) is a name to translate.
            let trimmed = rest.trim_start();
            let Some(value_part) = trimmed.strip_prefix(':') else {
                continue;
            };
            let value_part = value_part.trim_start();
            let Some(value) = value_part.strip_prefix('"') else {
                continue;
            };
            let Some(end) = value.find(['"', '\\']) else {
                continue;
            };
            if value.as_bytes()[end] != b'"' {
                continue;
            }
            let head = rest.len() - value.len();
            out.push_str(&rest[..head]);
            out.push_str(&self.slug(&value[..end]));
            rest = &value[end..];
        }
        out.push_str(rest);
        out
    }

    /// A raw request path with the workspace it names (`/api/hearth/workspaces/<name>…`)
    /// given its shared name.
    pub fn slug_in_path(&self, path: &str) -> String {
        let base = format!("{}/", rocky::api::console::paths::WORKSPACES);
        match path.strip_prefix(base.as_str()) {
            Some(rest) => {
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                format!("{base}{}{}", self.slug(&rest[..end]), &rest[end..])
            }
            None => path.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(prefix: &str) -> Tenant {
        Tenant {
            prefix: prefix.to_owned(),
        }
    }

    #[test]
    fn tenants_of_one_process_never_share_a_prefix() {
        let (a, b) = (Tenant::new(), Tenant::new());
        assert_ne!(a.prefix(), b.prefix());
        assert_ne!(a.slug("x"), b.slug("x"));
    }

    #[test]
    fn a_valid_name_is_prefixed_and_an_invalid_one_is_sent_as_it_is() {
        let t = tenant("w7-");
        assert_eq!(t.slug("x"), "w7-x");
        assert_eq!(t.slug("Bad-Slug"), "Bad-Slug");
        assert_eq!(t.slug("-ws4"), "-ws4");
        assert_eq!(t.name_of("w7-x"), Some("x"));
        assert_eq!(t.name_of("w17-x"), None);
        assert_eq!(t.name_of("x"), None);
    }

    #[test]
    #[should_panic(expected = "too long for a shared stack")]
    fn a_name_too_long_to_take_the_prefix_is_refused_by_name() {
        tenant("w7-").slug(&"a".repeat(31));
    }

    #[test]
    fn the_prefix_comes_out_of_names_in_text_and_nowhere_else() {
        let t = tenant("w7-");
        assert_eq!(
            t.unshare("workspace w7-x torn down; /api/hearth/workspaces/w7-x \"w7-x\""),
            "workspace x torn down; /api/hearth/workspaces/x \"x\""
        );
        // Inside another word or name, or not before a name: kept.
        assert_eq!(
            t.unshare("aw7-x rocky-s1-w7-x w7- w7-"),
            "aw7-x rocky-s1-w7-x w7- w7-"
        );
        assert_eq!(t.unshare("w7-w7-x"), "w7-x");
        let mut v = serde_json::json!({"slug": "w7-x", "w7-y": ["w7-z", 1]});
        t.unshare_value(&mut v);
        assert_eq!(v, serde_json::json!({"slug": "x", "y": ["z", 1]}));
    }

    /// Two scenarios on one console, both naming their workspace `x`: each reads back exactly
    /// its own records, under its own name, as from a log of its own.
    #[test]
    fn tenants_of_one_log_each_read_only_their_own_records() {
        use rocky::hatch::{Event, EventKind, Hatch};
        let (a, b) = (tenant("w1-"), tenant("w2-"));
        let hatch = Hatch::in_memory();
        let append = |kind, slug: String, data: serde_json::Value| {
            hatch
                .append(Event::new(kind, "admin").workspace(&slug).data(data))
                .unwrap()
        };
        append(
            EventKind::ProvisioningStarted,
            a.slug("x"),
            serde_json::json!({}),
        );
        append(
            EventKind::ProvisioningStarted,
            b.slug("x"),
            serde_json::json!({}),
        );
        append(
            EventKind::Failed,
            b.slug("x"),
            serde_json::json!({"reason": format!("workspace {} failed", b.slug("x"))}),
        );
        append(EventKind::Provisioned, a.slug("x"), serde_json::json!({}));
        append(
            EventKind::ProvisioningStarted,
            "w12-x".into(),
            serde_json::json!({}),
        );
        let records = hatch.records().unwrap();
        let kinds = |t: &Tenant| {
            t.slice(records.clone())
                .iter()
                .map(|r| {
                    (
                        r.kind.clone(),
                        r.subject.workspace.clone().unwrap(),
                        r.data.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        let started = EventKind::ProvisioningStarted.to_string();
        assert_eq!(
            kinds(&a),
            vec![
                (started.clone(), "x".into(), serde_json::json!({})),
                (
                    EventKind::Provisioned.to_string(),
                    "x".into(),
                    serde_json::json!({})
                ),
            ]
        );
        assert_eq!(
            kinds(&b),
            vec![
                (started, "x".into(), serde_json::json!({})),
                (
                    EventKind::Failed.to_string(),
                    "x".into(),
                    serde_json::json!({"reason": "workspace x failed"})
                ),
            ]
        );
    }

    #[test]
    fn a_raw_body_names_the_shared_workspace_byte_for_byte_otherwise() {
        let t = tenant("w7-");
        assert_eq!(
            t.slug_in_body(r#"{"slug":"dup","tier":"solo"}"#),
            r#"{"slug":"w7-dup","tier":"solo"}"#
        );
        assert_eq!(
            t.slug_in_body(r#"{"workspace" : "ghost","prompts":["p"]}"#),
            r#"{"workspace" : "w7-ghost","prompts":["p"]}"#
        );
        for kept in [
            r#"{"slug":"ws1","tier":"solo""#,
            r#"{"slug":"Bad-Slug","tier":"solo"}"#,
            r#"{"slug":"-ws4","tier":"solo"}"#,
            r#"{"slug":1}"#,
            r#"{"slug":"a\"b"}"#,
        ] {
            let sent = t.slug_in_body(kept);
            if kept.contains("ws1") {
                assert_eq!(sent, kept.replace("ws1", "w7-ws1"));
            } else {
                assert_eq!(sent, kept);
            }
        }
    }

    #[test]
    fn a_raw_path_names_the_shared_workspace() {
        let t = tenant("w7-");
        assert_eq!(
            t.slug_in_path("/api/hearth/workspaces/none"),
            "/api/hearth/workspaces/w7-none"
        );
        assert_eq!(
            t.slug_in_path("/api/hearth/workspaces/none?x=1"),
            "/api/hearth/workspaces/w7-none?x=1"
        );
        assert_eq!(t.slug_in_path("/api/ralph/runs"), "/api/ralph/runs");
    }
}
