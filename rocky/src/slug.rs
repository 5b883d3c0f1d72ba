//! slug: validation of workspace slugs.
//!
//! A slug names a workspace and ends up in Docker object names, labels and URLs, so it is
//! held to a DNS label: `^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$` (contract §4). This module
//! owns that rule and the precise reason a slug breaks it; callers map the error to a 400.

/// Longest slug accepted (one leading + 30 middle + one trailing character).
pub const MAX_LEN: usize = 32;

/// Why a slug is not a valid DNS label. Each message names the offending slug and, where it
/// helps, the position, so a user can fix the input without looking up the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("slug is empty")]
    Empty,
    #[error("slug {slug:?} is {len} characters long; the maximum is {MAX_LEN}")]
    TooLong { slug: String, len: usize },
    #[error(
        "slug {slug:?} has an uppercase letter at position {position}; slugs are DNS labels: a-z, 0-9 and '-'"
    )]
    Uppercase { slug: String, position: usize },
    #[error(
        "slug {slug:?} has an invalid character {ch:?} at position {position}; slugs are DNS labels: a-z, 0-9 and '-'"
    )]
    InvalidChar {
        slug: String,
        ch: char,
        position: usize,
    },
    #[error("slug {slug:?} starts with '-'; slugs must start with a-z or 0-9")]
    LeadingHyphen { slug: String },
    #[error("slug {slug:?} ends with '-'; slugs must end with a-z or 0-9")]
    TrailingHyphen { slug: String },
}

/// Checks `slug` against the DNS-label rule, reporting the first problem found.
///
/// Order matters for the message: length first (an over-long slug is wrong whatever it
/// contains), then the character set, then hyphen placement, which only makes sense to
/// talk about once every character is allowed.
pub fn validate(slug: &str) -> Result<(), SlugError> {
    if slug.is_empty() {
        return Err(SlugError::Empty);
    }
    // Counted in chars, not bytes, so a multi-byte character reports a sensible length.
    let len = slug.chars().count();
    if len > MAX_LEN {
        return Err(SlugError::TooLong {
            slug: slug.to_string(),
            len,
        });
    }
    for (position, ch) in slug.chars().enumerate() {
        match ch {
            'a'..='z' | '0'..='9' | '-' => {}
            c if c.is_uppercase() => {
                return Err(SlugError::Uppercase {
                    slug: slug.to_string(),
                    position,
                });
            }
            c => {
                return Err(SlugError::InvalidChar {
                    slug: slug.to_string(),
                    ch: c,
                    position,
                });
            }
        }
    }
    if slug.starts_with('-') {
        return Err(SlugError::LeadingHyphen {
            slug: slug.to_string(),
        });
    }
    if slug.ends_with('-') {
        return Err(SlugError::TrailingHyphen {
            slug: slug.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_slugs() {
        for ok in ["a", "0", "acme", "acme-prod", "a-b-c", "9lives", "a--b"] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn boundary_lengths() {
        assert_eq!(validate("a"), Ok(()));
        assert_eq!(validate("7"), Ok(()));
        let max = "a".repeat(32);
        assert_eq!(validate(&max), Ok(()));
        let max_with_hyphens = format!("a{}b", "-".repeat(30));
        assert_eq!(validate(&max_with_hyphens), Ok(()));
        let over = "a".repeat(33);
        assert_eq!(
            validate(&over),
            Err(SlugError::TooLong {
                slug: over.clone(),
                len: 33
            })
        );
        assert!(
            validate(&over)
                .unwrap_err()
                .to_string()
                .contains("is 33 characters long; the maximum is 32")
        );
    }

    #[test]
    fn empty() {
        assert_eq!(validate(""), Err(SlugError::Empty));
        assert_eq!(SlugError::Empty.to_string(), "slug is empty");
    }

    #[test]
    fn uppercase_names_the_position() {
        let err = validate("Abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "slug \"Abc\" has an uppercase letter at position 0; slugs are DNS labels: a-z, 0-9 and '-'"
        );
        assert_eq!(
            validate("abC"),
            Err(SlugError::Uppercase {
                slug: "abC".into(),
                position: 2
            })
        );
    }

    #[test]
    fn invalid_characters() {
        assert_eq!(
            validate("a_b"),
            Err(SlugError::InvalidChar {
                slug: "a_b".into(),
                ch: '_',
                position: 1
            })
        );
        assert!(matches!(
            validate("a.b"),
            Err(SlugError::InvalidChar { ch: '.', .. })
        ));
        assert!(matches!(
            validate("é"),
            Err(SlugError::InvalidChar {
                ch: 'é',
                position: 0,
                ..
            })
        ));
        assert!(matches!(
            validate("a b"),
            Err(SlugError::InvalidChar { ch: ' ', .. })
        ));
    }

    #[test]
    fn hyphen_placement() {
        assert_eq!(
            validate("-abc"),
            Err(SlugError::LeadingHyphen {
                slug: "-abc".into()
            })
        );
        assert_eq!(
            validate("abc-"),
            Err(SlugError::TrailingHyphen {
                slug: "abc-".into()
            })
        );
        assert!(matches!(
            validate("-"),
            Err(SlugError::LeadingHyphen { .. })
        ));
        let msg = validate("abc-").unwrap_err().to_string();
        assert!(msg.contains("ends with '-'"), "{msg}");
    }
}
