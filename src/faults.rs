//! The failure drill's faults that the services know nothing about: the harness turns each
//! into the services' public options (a worker started with another frame encoding).

use std::fmt;
use std::str::FromStr;

use rocky::kahn::{Encoding, Field};

/// The KAHN schema drift: the worker emits another schema version, or renames a field.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Drift {
    /// Speak `kahn/1` as written.
    #[default]
    None,
    /// Put this string in `schema`, e.g. `kahn/2`.
    Schema(String),
    /// Write field `from` under the name `to`. Frame types without `from` are unaffected
    /// (e.g. `attempt` only drifts NodeAttempt frames).
    RenameField { from: String, to: String },
}

impl Drift {
    /// The worker's encoding options that produce this drift.
    pub fn encoding(&self) -> Encoding {
        match self {
            Drift::None => Encoding::default(),
            Drift::Schema(schema) => Encoding {
                schema: Some(schema.clone()),
                rename: None,
            },
            Drift::RenameField { from, to } => Encoding {
                schema: None,
                rename: Some((from.clone(), to.clone())),
            },
        }
    }

    /// The same, as `ralph serve` options (a worker started as its own process).
    pub fn apply_to(&self, serve: &mut rocky::cli::ServeArgs) {
        let Encoding { schema, rename } = self.encoding();
        serve.kahn_schema = schema;
        serve.kahn_rename = rename;
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::None => f.write_str("none"),
            Drift::Schema(schema) => write!(f, "schema={schema}"),
            Drift::RenameField { from, to } => write!(f, "rename={from}:{to}"),
        }
    }
}

/// Why a drift spec (`none`, `schema=VERSION`, `rename=FROM:TO`) did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "failed to parse KAHN drift {input:?}: {problem} (expected `none`, `schema=VERSION` or `rename=FROM:TO`)"
)]
pub struct DriftParseError {
    /// The spec as given.
    pub input: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FromStr for Drift {
    type Err = DriftParseError;

    fn from_str(s: &str) -> Result<Drift, DriftParseError> {
        let fail = |problem: String| DriftParseError {
            input: s.to_owned(),
            problem,
        };
        if s == "none" {
            return Ok(Drift::None);
        }
        if let Some(schema) = s.strip_prefix("schema=") {
            if schema.is_empty() {
                return Err(fail("the schema is empty".to_owned()));
            }
            return Ok(Drift::Schema(schema.to_owned()));
        }
        if let Some(rename) = s.strip_prefix("rename=") {
            let Some((from, to)) = rename.split_once(':') else {
                return Err(fail("a rename needs FROM:TO".to_owned()));
            };
            // A drift that changes nothing would make the drill pass for the wrong reason.
            match Field::parse(from) {
                Some(Field::Kiln) | None => {
                    return Err(fail(format!("`{from}` is not a field the worker writes")));
                }
                Some(_) => {}
            }
            if to.is_empty() || to == from {
                return Err(fail(format!("`{to}` is not a new name for `{from}`")));
            }
            return Ok(Drift::RenameField {
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        Err(fail("unknown drift".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_specs_parse_and_print() {
        assert_eq!("none".parse::<Drift>(), Ok(Drift::None));
        assert_eq!(
            "schema=kahn/2".parse::<Drift>(),
            Ok(Drift::Schema("kahn/2".into()))
        );
        assert_eq!(
            "rename=node_id:nodeId".parse::<Drift>(),
            Ok(Drift::RenameField {
                from: "node_id".into(),
                to: "nodeId".into()
            })
        );
        for spec in ["none", "schema=kahn/2", "rename=node_id:nodeId"] {
            assert_eq!(spec.parse::<Drift>().expect("drift").to_string(), spec);
        }
        for bad in [
            "",
            "None",
            "schema=",
            "rename=node_id",
            "rename=nodeid:x",
            "rename=node_id:",
            "rename=node_id:node_id",
            "rename=kiln:k",
            "upside-down",
        ] {
            let err = bad.parse::<Drift>().expect_err(bad);
            assert!(
                err.to_string().starts_with("failed to parse KAHN drift"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_drift_becomes_worker_options() {
        let d: Drift = "rename=node_id:nodeId".parse().unwrap();
        let mut serve = rocky::cli::ServeArgs::new("0.0.0.0:8080");
        d.apply_to(&mut serve);
        let args: Vec<_> = serve.to_args().into_iter().collect();
        assert!(
            args.windows(2)
                .any(|w| w[0] == "--kahn-rename" && w[1] == "node_id:nodeId"),
            "{args:?}"
        );
        assert_eq!(
            d.encoding().rename,
            Some(("node_id".into(), "nodeId".into()))
        );
        assert_eq!(Drift::None.encoding(), Encoding::default());
        let mut serve = rocky::cli::ServeArgs::new("0.0.0.0:8080");
        Drift::None.apply_to(&mut serve);
        assert_eq!(serve, rocky::cli::ServeArgs::new("0.0.0.0:8080"));
    }
}
