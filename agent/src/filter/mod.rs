//! Consul's `?filter=` expressions: go-bexpr's grammar, checked against the type an
//! endpoint returns and evaluated on the typed values.
//!
//! [`Filter::new`] parses the expression (`parse`), then checks every selector against
//! the type's [`Schema`](fields::Schema) and prepares every value (numbers and booleans
//! parsed, regular expressions compiled), so evaluating an item does no parsing and a
//! mistake is a 400 before any data is read. A match through a list of structs
//! (`Checks.Status == passing`) holds when it holds for any element, as in go-bexpr; a
//! missing map key reads as the empty string.
//!
//! The agent filters what the servers return; Consul filters on the server. The answer
//! and its index are the same; only the bytes on the server port differ.

mod ast;
mod fields;
mod parse;

use regex::Regex;

use ast::{Expr, MatchOp};
pub use fields::{Fields, Filterable, Kind, Schema, Value};

/// Consul's prefix for every filter error.
const PREFIX: &str = "Failed to create boolean expression evaluator";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("{PREFIX}: {line}:{column} ({offset}): {message}")]
    Syntax {
        line: usize,
        column: usize,
        offset: usize,
        message: String,
    },
    #[error("{PREFIX}: Selector {0:?} is not valid")]
    Selector(String),
    #[error("{PREFIX}: Invalid match operator {op} for selector {selector:?}")]
    Operator { op: &'static str, selector: String },
    #[error("{PREFIX}: Failed to coerce value {value:?} for selector {selector:?}: {reason}")]
    Value {
        value: String,
        selector: String,
        reason: String,
    },
}

/// A checked, prepared filter for items of one type.
#[derive(Debug)]
pub struct Filter {
    root: Node,
}

#[derive(Debug)]
enum Node {
    Or(Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Test {
        path: Vec<String>,
        test: Test,
        negated: bool,
    },
}

/// The positive test a match makes on a selected value, with its operand prepared.
#[derive(Debug)]
enum Test {
    EqualStr(String),
    EqualInt(i64),
    EqualBool(bool),
    IsEmpty,
    /// An element of a list, a key of a map, or a substring of a string.
    Contains(String),
    Matches(Regex),
}

impl Filter {
    /// Parses `text` and checks it against `T`'s fields.
    pub fn new<T: Filterable>(text: &str) -> Result<Filter, FilterError> {
        let expr = parse::parse(text).map_err(|e| FilterError::Syntax {
            line: e.line,
            column: e.column,
            offset: e.offset,
            message: e.message,
        })?;
        Ok(Filter {
            root: prepare(expr, T::SCHEMA)?,
        })
    }

    pub fn matches<T: Filterable>(&self, item: &T) -> bool {
        eval(&self.root, item)
    }
}

fn prepare(expr: Expr, schema: &'static Schema) -> Result<Node, FilterError> {
    Ok(match expr {
        Expr::Or(a, b) => Node::Or(
            Box::new(prepare(*a, schema)?),
            Box::new(prepare(*b, schema)?),
        ),
        Expr::And(a, b) => Node::And(
            Box::new(prepare(*a, schema)?),
            Box::new(prepare(*b, schema)?),
        ),
        Expr::Not(e) => Node::Not(Box::new(prepare(*e, schema)?)),
        Expr::Match(m) => {
            let shown = m.selector.join(".");
            let kind =
                resolve(&m.selector, schema).ok_or_else(|| FilterError::Selector(shown.clone()))?;
            let (op, negated) = m.op.split();
            let value = m.value.unwrap_or_default();
            let bad_operator = || FilterError::Operator {
                op: op_name(m.op),
                selector: shown.clone(),
            };
            let coerce = |reason: String| FilterError::Value {
                value: value.clone(),
                selector: shown.clone(),
                reason,
            };
            let test = match (op, kind) {
                (MatchOp::Equal, Kind::Str) => Test::EqualStr(value.clone()),
                (MatchOp::Equal, Kind::Int) => {
                    Test::EqualInt(value.parse().map_err(|e| coerce(format!("{e}")))?)
                }
                (MatchOp::Equal, Kind::Bool) => Test::EqualBool(
                    parse_bool(&value).ok_or_else(|| coerce("not a boolean".into()))?,
                ),
                (MatchOp::IsEmpty, Kind::Str | Kind::StrList | Kind::StrMap | Kind::List(_)) => {
                    Test::IsEmpty
                }
                (MatchOp::In, Kind::Str | Kind::StrList | Kind::StrMap) => {
                    Test::Contains(value.clone())
                }
                (MatchOp::Matches, Kind::Str) => {
                    Test::Matches(Regex::new(&value).map_err(|e| coerce(e.to_string()))?)
                }
                _ => return Err(bad_operator()),
            };
            Node::Test {
                path: m.selector,
                test,
                negated,
            }
        }
    })
}

/// The kind a selector ends on, or `None` if the type has no such field.
fn resolve(path: &[String], schema: &'static Schema) -> Option<Kind> {
    let (first, rest) = path.split_first()?;
    let kind = schema.field(first)?;
    match (kind, rest) {
        (kind, []) => Some(kind),
        (Kind::StrMap, [_key]) => Some(Kind::Str),
        (Kind::Struct(inner) | Kind::List(inner), rest) => resolve(rest, inner),
        _ => None,
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn op_name(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "==",
        MatchOp::NotEqual => "!=",
        MatchOp::IsEmpty => "is empty",
        MatchOp::IsNotEmpty => "is not empty",
        MatchOp::In => "in",
        MatchOp::NotIn => "not in",
        MatchOp::Matches => "matches",
        MatchOp::NotMatches => "not matches",
    }
}

fn eval(node: &Node, item: &dyn Fields) -> bool {
    match node {
        Node::Or(a, b) => eval(a, item) || eval(b, item),
        Node::And(a, b) => eval(a, item) && eval(b, item),
        Node::Not(e) => !eval(e, item),
        Node::Test {
            path,
            test,
            negated,
        } => any_selected(item, path, &|value| apply(test, value) != *negated),
    }
}

/// Whether `check` holds for the value `path` selects, or for any of them when the path
/// goes through a list of structs.
fn any_selected(item: &dyn Fields, path: &[String], check: &dyn Fn(Value<'_>) -> bool) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let Some(value) = item.get(first) else {
        return false;
    };
    match (value, rest) {
        (Value::Struct(inner), [_, ..]) => any_selected(inner, rest, check),
        (Value::List(items), [_, ..]) => items.iter().any(|i| any_selected(*i, rest, check)),
        (Value::StrMap(map), [key]) => check(Value::Str(map.get(key).map_or("", String::as_str))),
        (value, []) => check(value),
        _ => false,
    }
}

fn apply(test: &Test, value: Value<'_>) -> bool {
    match (test, value) {
        (Test::EqualStr(want), Value::Str(have)) => have == want,
        (Test::EqualInt(want), Value::Int(have)) => have == *want,
        (Test::EqualBool(want), Value::Bool(have)) => have == *want,
        (Test::IsEmpty, Value::Str(s)) => s.is_empty(),
        (Test::IsEmpty, Value::StrList(l)) => l.is_empty(),
        (Test::IsEmpty, Value::StrMap(m)) => m.is_empty(),
        (Test::IsEmpty, Value::List(l)) => l.is_empty(),
        (Test::Contains(want), Value::Str(s)) => s.contains(want.as_str()),
        (Test::Contains(want), Value::StrList(l)) => l.iter().any(|v| v == want),
        (Test::Contains(want), Value::StrMap(m)) => m.contains_key(want),
        (Test::Matches(re), Value::Str(s)) => re.is_match(s),
        // The schema check rules out every other pairing.
        _ => false,
    }
}

#[cfg(test)]
mod tests;
