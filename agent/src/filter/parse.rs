//! go-bexpr's grammar (the one Consul's `?filter=` takes), with nom.
//!
//! ```text
//! Input      = _? OrExpr _? EOF
//! OrExpr     = AndExpr (_ "or" _ OrExpr)?
//! AndExpr    = NotExpr (_ "and" _ AndExpr)?
//! NotExpr    = "not" _ NotExpr | "(" _? OrExpr _? ")" | Match
//! Match      = Selector ("==" | "!=" | contains | not contains | matches | not matches) Value
//!            | Selector _ "is" _ ("empty" | "not" _ "empty")
//!            | Value _ ("in" | "not" _ "in") _ Selector
//! Selector   = Identifier ("." Identifier | "[" String "]" | "." Digits)*
//! Identifier = [a-zA-Z] [a-zA-Z0-9_/]*
//! Value      = Selector | Number | String      (strings in "..." or `...`)
//! ```
//! `_` is whitespace, which the word operators need around them.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while};
use nom::character::complete::{char, digit1, multispace0, multispace1, satisfy};
use nom::combinator::{eof, map, opt, peek, recognize, value};
use nom::multi::many0;
use nom::sequence::{delimited, pair, preceded, terminated, tuple};
use nom::IResult;

use super::ast::{Expr, Match, MatchOp};

type Res<'a, T> = IResult<&'a str, T>;

/// Where and why an expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub message: String,
}

pub fn parse(input: &str) -> Result<Expr, SyntaxError> {
    let mut whole = delimited(multispace0, or_expr, pair(multispace0, eof));
    match whole(input) {
        Ok((_, expr)) => Ok(expr),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(syntax_error(input, e.input)),
        Err(nom::Err::Incomplete(_)) => Err(syntax_error(input, "")),
    }
}

fn syntax_error(input: &str, rest: &str) -> SyntaxError {
    let offset = input.len() - rest.len();
    let before = &input[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let message = if rest.is_empty() {
        "unexpected end of expression".to_string()
    } else {
        let near: String = rest.chars().take(20).collect();
        format!("no match found near {near:?}")
    };
    SyntaxError {
        line,
        column,
        offset,
        message,
    }
}

/// A word operator with the whitespace it needs on both sides.
fn word<'a>(w: &'static str) -> impl FnMut(&'a str) -> Res<'a, &'a str> {
    delimited(multispace1, tag(w), multispace1)
}

fn or_expr(i: &str) -> Res<'_, Expr> {
    let (i, left) = and_expr(i)?;
    match preceded(word("or"), or_expr)(i) {
        Ok((i, right)) => Ok((i, Expr::Or(Box::new(left), Box::new(right)))),
        Err(nom::Err::Error(_)) => Ok((i, left)),
        Err(e) => Err(e),
    }
}

fn and_expr(i: &str) -> Res<'_, Expr> {
    let (i, left) = not_expr(i)?;
    match preceded(word("and"), and_expr)(i) {
        Ok((i, right)) => Ok((i, Expr::And(Box::new(left), Box::new(right)))),
        Err(nom::Err::Error(_)) => Ok((i, left)),
        Err(e) => Err(e),
    }
}

fn not_expr(i: &str) -> Res<'_, Expr> {
    alt((
        map(preceded(pair(tag("not"), multispace1), not_expr), |e| {
            match e {
                // `not not x` is `x`, as go-bexpr folds it.
                Expr::Not(inner) => *inner,
                e => Expr::Not(Box::new(e)),
            }
        }),
        delimited(
            pair(char('('), multispace0),
            or_expr,
            pair(multispace0, char(')')),
        ),
        map(match_expr, Expr::Match),
    ))(i)
}

fn match_expr(i: &str) -> Res<'_, Match> {
    alt((selector_op_value, selector_is_empty, value_in_selector))(i)
}

fn selector_op_value(i: &str) -> Res<'_, Match> {
    let symbol = |s: &'static str| delimited(multispace0, tag(s), multispace0);
    map(
        tuple((
            selector,
            alt((
                value(MatchOp::Equal, symbol("==")),
                value(MatchOp::NotEqual, symbol("!=")),
                value(MatchOp::In, word("contains")),
                value(
                    MatchOp::NotIn,
                    preceded(multispace1, pair(tag("not"), word("contains"))),
                ),
                value(MatchOp::Matches, word("matches")),
                value(
                    MatchOp::NotMatches,
                    preceded(multispace1, pair(tag("not"), word("matches"))),
                ),
            )),
            match_value,
        )),
        |(selector, op, value)| Match {
            selector,
            op,
            value: Some(value),
        },
    )(i)
}

fn selector_is_empty(i: &str) -> Res<'_, Match> {
    map(
        pair(
            terminated(selector, pair(multispace1, tag("is"))),
            alt((
                value(MatchOp::IsEmpty, preceded(multispace1, tag("empty"))),
                value(
                    MatchOp::IsNotEmpty,
                    tuple((multispace1, tag("not"), multispace1, tag("empty"))),
                ),
            )),
        ),
        |(selector, op)| Match {
            selector,
            op,
            value: None,
        },
    )(i)
}

fn value_in_selector(i: &str) -> Res<'_, Match> {
    map(
        tuple((
            match_value,
            alt((
                value(MatchOp::In, word("in")),
                value(
                    MatchOp::NotIn,
                    preceded(multispace1, pair(tag("not"), word("in"))),
                ),
            )),
            selector,
        )),
        |(value, op, selector)| Match {
            selector,
            op,
            value: Some(value),
        },
    )(i)
}

fn identifier(i: &str) -> Res<'_, String> {
    map(
        recognize(pair(
            satisfy(|c| c.is_ascii_alphabetic()),
            take_while(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '/'),
        )),
        str::to_string,
    )(i)
}

fn selector(i: &str) -> Res<'_, Vec<String>> {
    let (i, first) = identifier(i)?;
    let (i, rest) = many0(alt((
        preceded(char('.'), identifier),
        delimited(
            pair(char('['), multispace0),
            string_literal,
            pair(multispace0, char(']')),
        ),
        map(preceded(char('.'), digit1), str::to_string),
    )))(i)?;
    let mut path = vec![first];
    path.extend(rest);
    Ok((i, path))
}

fn match_value(i: &str) -> Res<'_, String> {
    alt((map(selector, |path| path.join(".")), number, string_literal))(i)
}

fn number(i: &str) -> Res<'_, String> {
    map(
        terminated(
            recognize(tuple((
                opt(char('-')),
                digit1,
                opt(pair(char('.'), digit1)),
            ))),
            // A number ends where the expression or a word does.
            peek(alt((multispace1, eof, tag(")")))),
        ),
        str::to_string,
    )(i)
}

fn string_literal(i: &str) -> Res<'_, String> {
    alt((
        map(
            delimited(char('`'), take_while(|c| c != '`'), char('`')),
            str::to_string,
        ),
        delimited(char('"'), quoted_body, char('"')),
    ))(i)
}

/// The inside of a `"..."` string, with Go's common escapes expanded.
fn quoted_body(i: &str) -> Res<'_, String> {
    let mut out = String::new();
    let mut chars = i.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((&i[at..], out)),
            '\\' => {
                let escaped = match chars.next() {
                    Some((_, 'n')) => '\n',
                    Some((_, 't')) => '\t',
                    Some((_, 'r')) => '\r',
                    Some((_, c @ ('"' | '\\' | '\''))) => c,
                    _ => {
                        return Err(nom::Err::Failure(nom::error::Error::new(
                            &i[at..],
                            nom::error::ErrorKind::Escaped,
                        )))
                    }
                };
                out.push(escaped);
            }
            c => out.push(c),
        }
    }
    // Unterminated: the error points at the end of the input.
    Err(nom::Err::Failure(nom::error::Error::new(
        &i[i.len()..],
        nom::error::ErrorKind::Char,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(selector: &[&str], op: MatchOp, value: Option<&str>) -> Expr {
        Expr::Match(Match {
            selector: selector.iter().map(|s| s.to_string()).collect(),
            op,
            value: value.map(str::to_string),
        })
    }

    #[test]
    fn every_match_operator_parses() {
        let cases = [
            (
                r#"Meta.env == "qa""#,
                m(&["Meta", "env"], MatchOp::Equal, Some("qa")),
            ),
            (
                "Meta.env==qa",
                m(&["Meta", "env"], MatchOp::Equal, Some("qa")),
            ),
            (
                r#"ServiceName != """#,
                m(&["ServiceName"], MatchOp::NotEqual, Some("")),
            ),
            ("Tags is empty", m(&["Tags"], MatchOp::IsEmpty, None)),
            ("Tags is not empty", m(&["Tags"], MatchOp::IsNotEmpty, None)),
            (
                r#""primary" in Tags"#,
                m(&["Tags"], MatchOp::In, Some("primary")),
            ),
            (
                "primary not in Tags",
                m(&["Tags"], MatchOp::NotIn, Some("primary")),
            ),
            (
                "Tags contains `primary`",
                m(&["Tags"], MatchOp::In, Some("primary")),
            ),
            (
                "Tags not contains x",
                m(&["Tags"], MatchOp::NotIn, Some("x")),
            ),
            (
                r#"Node matches "^web-\\d+$""#,
                m(&["Node"], MatchOp::Matches, Some(r"^web-\d+$")),
            ),
            (
                "Node not matches `a.*`",
                m(&["Node"], MatchOp::NotMatches, Some("a.*")),
            ),
            ("Port == 8080", m(&["Port"], MatchOp::Equal, Some("8080"))),
            (
                "Weight == -1.5",
                m(&["Weight"], MatchOp::Equal, Some("-1.5")),
            ),
            (
                r#"Node.Meta["rack id"] == r1"#,
                m(&["Node", "Meta", "rack id"], MatchOp::Equal, Some("r1")),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let a = m(&["a"], MatchOp::Equal, Some("1"));
        let b = m(&["b"], MatchOp::Equal, Some("2"));
        let c = m(&["c"], MatchOp::Equal, Some("3"));
        let expected = Expr::Or(
            Box::new(Expr::And(
                Box::new(a.clone()),
                Box::new(Expr::Not(Box::new(b.clone()))),
            )),
            Box::new(c.clone()),
        );
        assert_eq!(
            parse("a == 1 and not b == 2 or c == 3"),
            Ok(expected.clone())
        );
        assert_eq!(
            parse("( a == 1 and (not b == 2 ) ) or c == 3"),
            Ok(expected)
        );
        assert_eq!(
            parse("a == 1 and (b == 2 or c == 3)"),
            Ok(Expr::And(
                Box::new(a),
                Box::new(Expr::Or(Box::new(b.clone()), Box::new(c)))
            ))
        );
        assert_eq!(parse("not not b == 2"), Ok(b));
        assert!(parse("  \n a == 1 \t").is_ok());
    }

    #[test]
    fn bad_expressions_say_where() {
        for text in [
            "",
            "Meta.env ==",
            "Meta.env = qa",
            "a == 1 and",
            "(a == 1",
            "a == \"open",
            "1abc == x",
            "a == 1 or or b == 2",
            "Tags is full",
            "a == 1)",
        ] {
            let e = parse(text).expect_err(text);
            assert!(e.offset <= text.len(), "{text}: {e:?}");
            assert_eq!(e.line, 1);
        }
        let e = parse("a == 1\nand b ==").unwrap_err();
        assert_eq!(e.line, 2, "{e:?}");
    }
}
