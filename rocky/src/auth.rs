//! auth: LocalAuth, the console's bearer-token → principal resolution and role rights (contract §4).
//!
//! This module owns the tokens file format, the roles and what each may do, and the mapping
//! of failures to HTTP statuses (401 for no/unknown token, 403 for a missing right). Tokens
//! are held only as SHA-256 digests and compared in constant time against every entry, so
//! neither the token bytes nor their length leak through timing or `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::vault::SecretText;

crate::wire_enum! {
    /// What a principal may do, coarsely. Rights are fixed per role; there is no per-user ACL.
    pub enum Role {
        Admin = "admin",
        Operator = "operator",
        Viewer = "viewer",
    }
}

crate::wire_enum! {
    /// One action class of the console API.
    pub enum Right {
        ReadWorkspaces = "read_workspaces",
        ManageWorkspaces = "manage_workspaces",
        SubmitRuns = "submit_runs",
        ReadRuns = "read_runs",
    }
}

impl Role {
    /// Admin may do everything; an operator runs work but does not create or delete
    /// workspaces; a viewer only reads.
    pub fn can(self, right: Right) -> bool {
        match self {
            Role::Admin => true,
            Role::Operator => !matches!(right, Right::ManageWorkspaces),
            Role::Viewer => matches!(right, Right::ReadWorkspaces | Right::ReadRuns),
        }
    }
}

/// Who a request acts as; `name` is what HATCH records as the actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

/// Why a request was not let through, or why LocalAuth could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header, another scheme than Bearer, or an empty token.
    #[error("no bearer token: send \"Authorization: Bearer <token>\"")]
    MissingToken,
    #[error("unknown bearer token")]
    UnknownToken,
    #[error("principal {principal} (role {role}) lacks the right {right}")]
    Forbidden {
        principal: String,
        role: Role,
        right: Right,
    },
    #[error("failed to read the tokens file {path}: {source}")]
    FileRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to parse the tokens file {path}: {message}")]
    FileParse { path: PathBuf, message: String },
    #[error("failed to load tokens: the token of principal {principal} is empty")]
    EmptyToken { principal: String },
    #[error("failed to load tokens: a principal name is empty")]
    EmptyPrincipal,
    #[error("failed to load tokens: principals {first} and {second} have the same token")]
    DuplicateToken { first: String, second: String },
}

impl AuthError {
    /// The HTTP status the console answers with: 401 when the caller is not identified,
    /// 403 when identified but not allowed, 500 for configuration errors (the server's fault).
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::MissingToken | AuthError::UnknownToken => 401,
            AuthError::Forbidden { .. } => 403,
            AuthError::FileRead { .. }
            | AuthError::FileParse { .. }
            | AuthError::EmptyToken { .. }
            | AuthError::EmptyPrincipal
            | AuthError::DuplicateToken { .. } => 500,
        }
    }
}

/// Tokens file layout. Unknown fields are refused so a misspelt `role` cannot silently
/// fall back to something else.
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenEntry>,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: SecretText,
    principal: String,
    role: Role,
}

struct Entry {
    digest: [u8; 32],
    principal: Principal,
}

/// Static bearer tokens mapped to principals, read from a local file in the solo tier.
pub struct LocalAuth {
    entries: Vec<Entry>,
}

/// Lists principals only; digests are not secrets but there is no reason to print them.
impl fmt::Debug for LocalAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalAuth")
            .field(
                "principals",
                &self
                    .entries
                    .iter()
                    .map(|e| &e.principal)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl LocalAuth {
    /// Loads tokens from YAML:
    ///
    /// ```yaml
    /// tokens:
    ///   - token: "…"
    ///     principal: admin
    ///     role: admin
    /// ```
    pub fn from_file(path: &Path) -> Result<LocalAuth, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::FileRead {
            path: path.to_path_buf(),
            source,
        })?;
        let file: TokensFile = yaml_serde::from_str(&text).map_err(|e| AuthError::FileParse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        LocalAuth::from_tokens(
            file.tokens
                .into_iter()
                .map(|e| {
                    (
                        e.token.0,
                        Principal {
                            name: e.principal,
                            role: e.role,
                        },
                    )
                })
                .collect(),
        )
    }

    /// Builds LocalAuth from `(token, principal)` pairs. Empty tokens and tokens shared by
    /// two entries are refused: either would make "who is this?" ambiguous.
    pub fn from_tokens(entries: Vec<(String, Principal)>) -> Result<LocalAuth, AuthError> {
        let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
        for (token, principal) in entries {
            if principal.name.is_empty() {
                return Err(AuthError::EmptyPrincipal);
            }
            if token.is_empty() {
                return Err(AuthError::EmptyToken {
                    principal: principal.name,
                });
            }
            let digest = digest(&token);
            if let Some(first) = out.iter().find(|e| e.digest == digest) {
                return Err(AuthError::DuplicateToken {
                    first: first.principal.name.clone(),
                    second: principal.name,
                });
            }
            out.push(Entry { digest, principal });
        }
        Ok(LocalAuth { entries: out })
    }

    /// Resolves an `Authorization` header value (`Bearer <token>`) to its principal.
    pub fn resolve(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let token = bearer_token(authorization).ok_or(AuthError::MissingToken)?;
        let presented = digest(token);
        // Every entry is compared, match or not, so the time taken does not depend on
        // which entry (if any) holds the token.
        let mut found: Option<&Entry> = None;
        for entry in &self.entries {
            let equal: bool = entry.digest.ct_eq(&presented).into();
            if equal {
                found = Some(entry);
            }
        }
        found
            .map(|e| e.principal.clone())
            .ok_or(AuthError::UnknownToken)
    }

    /// Resolves the header and checks that the principal's role grants `right`.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        right: Right,
    ) -> Result<Principal, AuthError> {
        let principal = self.resolve(authorization)?;
        if principal.role.can(right) {
            Ok(principal)
        } else {
            Err(AuthError::Forbidden {
                principal: principal.name,
                role: principal.role,
                right,
            })
        }
    }
}

/// The token of a `Bearer <token>` header, or `None` for anything else. The scheme name
/// is case-insensitive (RFC 9110 §11.1).
fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Writes a tokens file that [`LocalAuth::from_file`] reads back, with mode 0600 since it
/// holds bearer tokens; written via a sibling temporary file and a rename so a console
/// starting concurrently never reads half of it. Used by the stack launcher.
pub fn write_tokens_file(path: &Path, entries: &[(String, Principal)]) -> std::io::Result<()> {
    let file = TokensFile {
        tokens: entries
            .iter()
            .map(|(token, p)| TokenEntry {
                token: SecretText(token.clone()),
                principal: p.name.clone(),
                role: p.role,
            })
            .collect(),
    };
    let yaml = yaml_serde::to_string(&file).map_err(std::io::Error::other)?;
    crate::vault::write_private_file(path, yaml.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, role: Role) -> Principal {
        Principal {
            name: name.into(),
            role,
        }
    }

    fn auth() -> LocalAuth {
        LocalAuth::from_tokens(vec![
            ("tok-admin".into(), p("admin", Role::Admin)),
            ("tok-op".into(), p("olga", Role::Operator)),
            ("tok-view".into(), p("vic", Role::Viewer)),
        ])
        .unwrap()
    }

    #[test]
    fn role_rights() {
        use Right::*;
        let all = [ReadWorkspaces, ManageWorkspaces, SubmitRuns, ReadRuns];
        assert!(all.iter().all(|r| Role::Admin.can(*r)));
        assert_eq!(
            all.map(|r| Role::Operator.can(r)),
            [true, false, true, true]
        );
        assert_eq!(all.map(|r| Role::Viewer.can(r)), [true, false, false, true]);
    }

    #[test]
    fn resolves_each_principal() {
        let a = auth();
        assert_eq!(
            a.resolve(Some("Bearer tok-admin")).unwrap(),
            p("admin", Role::Admin)
        );
        assert_eq!(
            a.resolve(Some("bearer tok-op")).unwrap(),
            p("olga", Role::Operator)
        );
        assert_eq!(
            a.authorize(Some("Bearer tok-admin"), Right::ManageWorkspaces)
                .unwrap()
                .name,
            "admin"
        );
    }

    #[test]
    fn unknown_and_missing_are_401() {
        let a = auth();
        for header in [
            Some("Bearer tok-nope"),
            Some("Bearer tok-admin2"),
            Some("Bearer tok"),
        ] {
            let err = a.resolve(header).unwrap_err();
            assert!(matches!(err, AuthError::UnknownToken), "{header:?}: {err}");
            assert_eq!(err.http_status(), 401);
        }
        for header in [None, Some(""), Some("Bearer"), Some("Bearer   ")] {
            let err = a.resolve(header).unwrap_err();
            assert!(matches!(err, AuthError::MissingToken), "{header:?}: {err}");
            assert_eq!(err.http_status(), 401);
        }
    }

    #[test]
    fn other_schemes_are_401() {
        let a = auth();
        for header in ["Basic tok-admin", "Token tok-admin", "tok-admin"] {
            let err = a.authorize(Some(header), Right::ReadRuns).unwrap_err();
            assert_eq!(err.http_status(), 401, "{header}: {err}");
        }
    }

    #[test]
    fn viewer_cannot_manage_workspaces() {
        let err = auth()
            .authorize(Some("Bearer tok-view"), Right::ManageWorkspaces)
            .unwrap_err();
        assert_eq!(err.http_status(), 403);
        assert!(
            matches!(&err, AuthError::Forbidden { principal, role: Role::Viewer, right: Right::ManageWorkspaces } if principal == "vic"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "principal vic (role viewer) lacks the right manage_workspaces"
        );
        // ...but may read.
        assert!(
            auth()
                .authorize(Some("Bearer tok-view"), Right::ReadWorkspaces)
                .is_ok()
        );
    }

    #[test]
    fn file_roundtrip_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        let entries = vec![
            (
                "s3cret: \"admin\" token".to_string(),
                p("admin", Role::Admin),
            ),
            ("v-token".to_string(), p("vic", Role::Viewer)),
        ];
        write_tokens_file(&path, &entries).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let a = LocalAuth::from_file(&path).unwrap();
        assert_eq!(
            a.resolve(Some("Bearer s3cret: \"admin\" token")).unwrap(),
            p("admin", Role::Admin)
        );
        assert_eq!(
            a.resolve(Some("Bearer v-token")).unwrap(),
            p("vic", Role::Viewer)
        );
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("s3cret") && dbg.contains("vic"), "{dbg}");
    }

    #[test]
    fn from_file_parses_the_documented_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        std::fs::write(
            &path,
            "tokens:\n  - token: \"abc\"\n    principal: admin\n    role: admin\n  - token: \"def\"\n    principal: ci\n    role: operator\n",
        )
        .unwrap();
        let a = LocalAuth::from_file(&path).unwrap();
        assert_eq!(
            a.resolve(Some("Bearer def")).unwrap(),
            p("ci", Role::Operator)
        );
    }

    #[test]
    fn bad_files_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            LocalAuth::from_file(&path)
        };
        let dup = load(
            "tokens:\n  - token: same\n    principal: a\n    role: admin\n  - token: same\n    principal: b\n    role: viewer\n",
        )
        .unwrap_err();
        assert!(
            matches!(&dup, AuthError::DuplicateToken { first, second } if first == "a" && second == "b"),
            "{dup}"
        );
        assert_eq!(dup.http_status(), 500);

        let empty =
            load("tokens:\n  - token: \"\"\n    principal: a\n    role: admin\n").unwrap_err();
        assert!(matches!(empty, AuthError::EmptyToken { .. }), "{empty}");

        let unknown =
            load("tokens:\n  - token: t\n    principal: a\n    role: admin\n    rol: viewer\n")
                .unwrap_err();
        assert!(matches!(unknown, AuthError::FileParse { .. }), "{unknown}");

        let bad_role =
            load("tokens:\n  - token: t\n    principal: a\n    role: root\n").unwrap_err();
        assert!(
            matches!(bad_role, AuthError::FileParse { .. }),
            "{bad_role}"
        );

        let missing = LocalAuth::from_file(&dir.path().join("absent.yaml")).unwrap_err();
        assert!(matches!(missing, AuthError::FileRead { .. }));
        assert!(
            missing
                .to_string()
                .starts_with("failed to read the tokens file")
        );
    }

    #[test]
    fn duplicate_token_rejected_in_from_tokens() {
        let err = LocalAuth::from_tokens(vec![
            ("t".into(), p("a", Role::Admin)),
            ("t".into(), p("b", Role::Viewer)),
        ])
        .unwrap_err();
        assert!(matches!(err, AuthError::DuplicateToken { .. }));
        assert!(matches!(
            LocalAuth::from_tokens(vec![("".into(), p("a", Role::Admin))]),
            Err(AuthError::EmptyToken { .. })
        ));
    }
}
