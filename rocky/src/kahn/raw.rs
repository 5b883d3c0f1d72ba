//! Zero-copy reading of a frame payload for the validator: [`Top`] gathers an object's
//! fields into [`Slots`] in one pass, each value a [`Raw`] scalar (borrowed when it needs no
//! unescaping) or a container kind, so that the validator, not serde, words every problem.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::frame::Field;

/// A field value as the validator needs it: scalars kept (strings borrowed from the payload
/// when they need no unescaping), containers only by kind. Reading frames this way instead
/// of into a `Value` avoids a map and an owned string per field, and keeps duplicate keys
/// visible, which a `Value` map would silently collapse.
#[derive(Clone, Debug)]
pub(super) enum Raw<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Raw<'_> {
    pub(super) fn from_value(value: &Value) -> Raw<'_> {
        match value {
            Value::Null => Raw::Null,
            Value::Bool(b) => Raw::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Raw::U64(u),
                (_, Some(i), _) => Raw::I64(i),
                (_, _, f) => Raw::F64(f.unwrap_or(f64::NAN)),
            },
            Value::String(s) => Raw::Str(Cow::Borrowed(s)),
            Value::Array(_) => Raw::Array,
            Value::Object(_) => Raw::Object,
        }
    }

    /// The value as a reason shows it.
    pub(super) fn describe(&self) -> String {
        match self {
            Raw::Null => "null".to_owned(),
            Raw::Bool(b) => b.to_string(),
            Raw::U64(n) => n.to_string(),
            Raw::I64(n) => n.to_string(),
            Raw::F64(n) => n.to_string(),
            Raw::Str(s) => format!("{:?}", &**s),
            Raw::Array => "an array".to_owned(),
            Raw::Object => "an object".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Raw<'de>, E> {
        Ok(Raw::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Raw<'de>, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Raw<'de>, E> {
        Ok(Raw::U64(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Raw<'de>, E> {
        Ok(Raw::I64(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Raw<'de>, E> {
        Ok(Raw::F64(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Raw::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Raw::Object)
    }
}

/// An object key, borrowed when it needs no unescaping.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The fields of one frame object, gathered in one pass. Problems are noted rather than
/// raised, so that serde never turns them into its own messages: the validator decides
/// which one to report.
#[derive(Default)]
pub(super) struct Slots<'a> {
    /// Values of the known fields, indexed by [`Field::index`]; `kiln` lives apart.
    pub(super) values: [Option<Raw<'a>>; Field::ALL.len()],
    /// `kiln`, whole, since it is passed through.
    pub(super) kiln: Option<Value>,
    /// The first key that is no `kahn/1` field at all.
    pub(super) unknown: Option<Cow<'a, str>>,
    /// The first known key that appeared twice.
    pub(super) duplicate: Option<&'static str>,
}

impl<'a> Slots<'a> {
    pub(super) fn get(&self, field: Field) -> Option<&Raw<'a>> {
        self.values[field.index()].as_ref()
    }
}

/// A payload: an object's fields, or the kind of the non-object it was.
#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack for one validation; boxing would allocate per frame"
)]
pub(super) enum Top<'a> {
    Object(Slots<'a>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a KAHN frame object")
    }

    fn visit_unit<E>(self) -> Result<Top<'de>, E> {
        Ok(Top::Other("null"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Top<'de>, E> {
        Ok(Top::Other("a boolean"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Top<'de>, E> {
        Ok(Top::Other("a number"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Top<'de>, E> {
        Ok(Top::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Top<'de>, E> {
        Ok(Top::Other("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Top<'de>, E> {
        Ok(Top::Other("a string"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
        let mut slots = Slots::default();
        while let Some(Key(key)) = map.next_key()? {
            match Field::parse(&key) {
                Some(Field::Kiln) => {
                    let kiln: Value = map.next_value()?;
                    if slots.kiln.replace(kiln).is_some() {
                        slots.duplicate.get_or_insert(Field::Kiln.as_str());
                    }
                }
                Some(field) => {
                    let value: Raw<'de> = map.next_value()?;
                    if slots.values[field.index()].replace(value).is_some() {
                        slots.duplicate.get_or_insert(field.as_str());
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    if slots.unknown.is_none() {
                        slots.unknown = Some(key);
                    }
                }
            }
        }
        Ok(Top::Object(slots))
    }
}
