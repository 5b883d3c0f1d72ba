//! One mechanism for the enums whose values have wire names (event kinds, statuses, roles,
//! node states…): [`wire_enum!`] declares the enum and gives it `ALL`, `as_str`, `parse`,
//! `Display`, `FromStr` and serde by name, so a name is written exactly once.

/// Declares a fieldless enum whose variants have wire names (this example is the unit test
/// `the_documented_example_holds`).
///
/// ```
/// rocky::wire_enum! {
///     /// A colour.
///     pub enum Colour {
///         /// Warm.
///         Red = "red",
///         Blue = "blue",
///     }
/// }
/// assert_eq!(Colour::parse("red"), Some(Colour::Red));
/// assert_eq!(Colour::Blue.to_string(), "blue");
/// assert_eq!(serde_json::to_string(&Colour::Red).unwrap(), "\"red\"");
/// ```
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $ty:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $name:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $ty {
            $( $(#[$vmeta])* $variant ),+
        }

        #[allow(
            dead_code,
            reason = "a private enum need not use every generated item; an expectation would fail where it does"
        )]
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The value with this wire name, if any.
            pub fn parse(s: &str) -> Option<$ty> {
                match s {
                    $($name => Some($ty::$variant),)+
                    _ => None,
                }
            }

            /// Every wire name, comma-separated (for error messages).
            pub fn names() -> String {
                [$($name),+].join(", ")
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> Result<$ty, $crate::names::UnknownName> {
                $ty::parse(s).ok_or_else(|| $crate::names::UnknownName {
                    what: stringify!($ty),
                    got: s.to_owned(),
                    expected: $ty::names(),
                })
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                struct NameVisitor;
                impl ::serde::de::Visitor<'_> for NameVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "one of {}", $ty::names())
                    }
                    fn visit_str<E: ::serde::de::Error>(self, s: &str) -> Result<$ty, E> {
                        $ty::parse(s).ok_or_else(|| {
                            E::invalid_value(::serde::de::Unexpected::Str(s), &self)
                        })
                    }
                }
                deserializer.deserialize_str(NameVisitor)
            }
        }
    };
}

/// A name that is not one of an enum's wire names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{got}` (expected one of {expected})")]
pub struct UnknownName {
    /// The enum's type name.
    pub what: &'static str,
    /// What was given.
    pub got: String,
    /// The accepted names.
    pub expected: String,
}

#[cfg(test)]
mod tests {
    crate::wire_enum! {
        enum Fruit {
            Apple = "apple",
            Pear = "pear",
        }
    }

    /// The example of the macro's docs.
    #[test]
    fn the_documented_example_holds() {
        crate::wire_enum! {
            /// A colour.
            pub enum Colour {
                /// Warm.
                Red = "red",
                Blue = "blue",
            }
        }
        assert_eq!(Colour::parse("red"), Some(Colour::Red));
        assert_eq!(Colour::Blue.to_string(), "blue");
        assert_eq!(serde_json::to_string(&Colour::Red).unwrap(), "\"red\"");
    }

    #[test]
    fn names_round_trip_through_every_mechanism() {
        for f in Fruit::ALL {
            assert_eq!(Fruit::parse(f.as_str()), Some(f));
            assert_eq!(f.to_string().parse::<Fruit>(), Ok(f));
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(serde_json::from_str::<Fruit>(&json).unwrap(), f);
        }
        let err = "plum".parse::<Fruit>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown Fruit `plum` (expected one of apple, pear)"
        );
        assert!(serde_json::from_str::<Fruit>("\"plum\"").is_err());
    }
}
