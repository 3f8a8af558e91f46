//! What a filter expression says, as parsed: no types known yet.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match(Match),
}

/// `<selector> <op> <value>`, `<value> in <selector>` or `<selector> is [not] empty`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Field names and map keys, outermost first: `Node.Meta["rack"]` is
    /// `["Node", "Meta", "rack"]`.
    pub selector: Vec<String>,
    pub op: MatchOp,
    /// The raw value (quotes removed, escapes expanded); `None` for emptiness checks.
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    IsEmpty,
    IsNotEmpty,
    /// `"v" in <selector>` and `<selector> contains "v"`: the same test, as in go-bexpr.
    In,
    NotIn,
    Matches,
    NotMatches,
}

impl MatchOp {
    /// The positive test and whether it is negated.
    pub fn split(self) -> (MatchOp, bool) {
        match self {
            MatchOp::NotEqual => (MatchOp::Equal, true),
            MatchOp::IsNotEmpty => (MatchOp::IsEmpty, true),
            MatchOp::NotIn => (MatchOp::In, true),
            MatchOp::NotMatches => (MatchOp::Matches, true),
            op => (op, false),
        }
    }
}
