//! Where in a pipeline file a position is: at the top level, in a block, a
//! trigger or a variable. Structural errors only carry a line and column;
//! this names the block or trigger they are in, from a tolerant second read
//! of the file's outline that happens only on the error path.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::span::{Position, Sp};
use super::yaml::options;

#[derive(Debug, Default)]
pub(super) struct Place {
    /// The top-level key the position is under.
    pub(super) section: Option<String>,
    pub(super) block: Option<String>,
    /// The trigger's number (from 1) and name.
    pub(super) trigger: Option<(usize, Option<String>)>,
    pub(super) variable: Option<String>,
    /// The position is that of a block id.
    pub(super) at_block_key: bool,
    /// The position is that of a variable's name.
    pub(super) at_variable_key: bool,
}

impl Place {
    pub(super) fn find(source: &str, position: Position) -> Place {
        let options = options(serde_saphyr::DuplicateKeyPolicy::FirstWins);
        let Ok(Some(outline)) =
            serde_saphyr::from_str_with_options::<Option<Outline>>(source, options)
        else {
            return Place::default();
        };
        let mut place = Place::default();
        let top_column = outline.keys.first().map(|key| key.pos.column);
        if top_column == Some(position.column) {
            // At a top-level key: the place is the pipeline itself.
            return place;
        }
        let Some(section) = outline.keys.iter().rfind(|key| key.pos < position) else {
            return place;
        };
        place.section = Some(section.value.clone());
        let last_before = |keys: &[Sp<String>]| {
            keys.iter()
                .rfind(|key| key.pos < position)
                .map(|key| key.value.clone())
        };
        match section.value.as_str() {
            "blocks" => {
                let block_column = outline.blocks.first().map(|key| key.pos.column);
                if block_column == Some(position.column) {
                    place.at_block_key = true;
                } else {
                    place.block = last_before(&outline.blocks);
                }
            }
            "variables" => {
                let variable_column = outline.variables.first().map(|key| key.pos.column);
                if variable_column == Some(position.column) {
                    place.at_variable_key = true;
                } else {
                    place.variable = last_before(&outline.variables);
                }
            }
            "triggers" => {
                place.trigger = outline
                    .triggers
                    .iter()
                    .enumerate()
                    .rfind(|(_, trigger)| trigger.pos <= position)
                    .map(|(index, trigger)| {
                        let name = trigger.value.get("name").and_then(Value::as_str);
                        (index + 1, name.map(str::to_owned))
                    });
            }
            _ => {}
        }
        place
    }

    /// "block `load`", "`retries` of block `load`", "trigger `nightly`",
    /// "variable `region`", "`blocks`", "the pipeline", …
    pub(super) fn describe(&self, nested: Option<&str>) -> String {
        if let Some(variable) = &self.variable {
            return format!("variable `{variable}`");
        }
        let outer = if let Some(block) = &self.block {
            Some(format!("block `{block}`"))
        } else {
            self.trigger.as_ref().map(|(number, name)| match name {
                Some(name) => format!("trigger `{name}`"),
                None => format!("trigger #{number}"),
            })
        };
        match (nested, outer) {
            (Some(nested), Some(outer)) => format!("{nested} of {outer}"),
            (Some(nested), None) => nested.to_owned(),
            (None, Some(outer)) => outer,
            (None, None) => match &self.section {
                Some(section) => format!("`{section}`"),
                None => "the pipeline".to_owned(),
            },
        }
    }
}

/// The outline of a pipeline file: its top-level keys, block ids, variable
/// names and triggers with their positions. Reading it accepts any shape.
#[derive(Debug, Default)]
struct Outline {
    keys: Vec<Sp<String>>,
    blocks: Vec<Sp<String>>,
    variables: Vec<Sp<String>>,
    triggers: Vec<Sp<Value>>,
}

/// Any value, keeping only what the outline needs: a mapping's keys or a
/// list's items.
#[derive(Default)]
struct Shape {
    keys: Vec<Sp<String>>,
    items: Vec<Sp<Value>>,
}

impl<'de> serde::Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;

        impl<'de> Visitor<'de> for ShapeVisitor {
            type Value = Shape;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                let mut shape = Shape::default();
                while let Some(key) = map.next_key::<Sp<String>>()? {
                    map.next_value::<IgnoredAny>()?;
                    shape.keys.push(key);
                }
                Ok(shape)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let mut shape = Shape::default();
                while let Some(item) = seq.next_element::<Sp<Value>>()? {
                    shape.items.push(item);
                }
                Ok(shape)
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::default())
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::default())
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::default())
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::default())
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::default())
            }

            fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::default())
            }

            fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::default())
            }
        }

        deserializer.deserialize_any(ShapeVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for Outline {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OutlineVisitor;

        impl<'de> Visitor<'de> for OutlineVisitor {
            type Value = Outline;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Outline, A::Error> {
                let mut outline = Outline::default();
                while let Some(key) = map.next_key::<Sp<String>>()? {
                    match key.value.as_str() {
                        "blocks" => outline.blocks = map.next_value::<Shape>()?.keys,
                        "variables" => outline.variables = map.next_value::<Shape>()?.keys,
                        "triggers" => outline.triggers = map.next_value::<Shape>()?.items,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    outline.keys.push(key);
                }
                Ok(outline)
            }
        }

        deserializer.deserialize_map(OutlineVisitor)
    }
}
