//! The SOQL subset, and the SOSL subset `search` understands: a winnow lexer (identifiers,
//! quoted strings with escapes, numbers, date and dateTime literals, punctuation) and a
//! recursive-descent parser over its tokens that reports Salesforce's `unexpected token: X`.
//!
//! ```text
//! query    := SELECT item (',' item)* FROM name [alias] [USING SCOPE s] [WHERE cond] [WITH name]
//!             [GROUP BY (path, … | ROLLUP '(' path, … ')' | CUBE '(' path, … ')') [HAVING cond]]
//!             [ORDER BY (path | agg) [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]
//!             [FOR VIEW|REFERENCE|UPDATE]
//! item     := path | '(' query ')' | agg [alias] | FIELDS '(' STANDARD|CUSTOM|ALL ')'
//!             | TYPEOF path (WHEN Type THEN path, …)+ [ELSE path, …] END
//! agg      := COUNT '(' [path] ')' | SUM|AVG|MIN|MAX|COUNT_DISTINCT '(' path ')'
//! cond     := and (OR and)* ; and := not (AND not)* ; not := NOT not | '(' cond ')' | predicate
//! predicate:= path op value | agg op value | path [NOT] IN '(' value, … ')'
//!             | path [NOT] IN '(' query ')' | path INCLUDES|EXCLUDES '(' 'a;b', … ')'
//! value    := NULL | TRUE | FALSE | number | 'string' | 2024-01-31 | 2024-01-31T00:00:00Z
//!             | TODAY | YESTERDAY | TOMORROW | LAST_N_DAYS:n | NEXT_N_DAYS:n | …
//! ```

mod lex;
mod sosl;

use lex::unexpected;
pub(crate) use lex::{SyntaxError, Tok, Token, lex};
pub(crate) use sosl::{Returning, parse_search};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    pub(crate) parts: Vec<String>,
    pub(crate) pos: usize,
}

impl Path {
    pub(crate) fn text(&self) -> String {
        self.parts.join(".")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Agg {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Field(Path),
    Sub(Box<Query>),
    /// `COUNT()` has no argument.
    Agg {
        func: Agg,
        arg: Option<Path>,
        alias: Option<String>,
    },
    /// `FIELDS(STANDARD|CUSTOM|ALL)` at byte `pos`.
    Fields(FieldSet, usize),
    /// `TYPEOF rel WHEN Type THEN fields … [ELSE fields] END`.
    TypeOf {
        rel: Path,
        whens: Vec<(String, Vec<Path>)>,
        otherwise: Vec<Path>,
    },
}

/// Which fields `FIELDS()` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldSet {
    Standard,
    Custom,
    All,
}

/// How GROUP BY groups: plainly, or with subtotals (`ROLLUP`, `CUBE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Grouping {
    #[default]
    Plain,
    Rollup,
    Cube,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Date(String),
    DateTime(String),
    /// `TODAY`, `LAST_N_DAYS:7`, …
    DateFn(String, Option<i64>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Cmp(Path, Op, Lit),
    In(Path, bool, Vec<Lit>),
    /// A semi-join (`Id IN (SELECT AccountId FROM Contact)`) or, negated, an anti-join.
    InQuery(Path, bool, Box<Query>),
    Includes(Path, bool, Vec<String>),
    /// `COUNT(Id) > 1` in HAVING.
    AggCmp(Agg, Option<Path>, Op, Lit),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    /// The field, or the aggregate's argument when `agg` is set (empty for `COUNT()`).
    pub(crate) path: Path,
    pub(crate) agg: Option<Agg>,
    pub(crate) desc: bool,
    pub(crate) nulls_last: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Query {
    pub(crate) select: Vec<Item>,
    pub(crate) from: String,
    pub(crate) from_pos: usize,
    pub(crate) alias: Option<String>,
    pub(crate) filter: Option<Cond>,
    pub(crate) group_by: Vec<Path>,
    pub(crate) grouping: Grouping,
    pub(crate) having: Option<Cond>,
    pub(crate) order: Vec<Order>,
    pub(crate) limit: Option<u64>,
    pub(crate) offset: Option<u64>,
}

const KEYWORDS: &[&str] = &[
    "select", "from", "where", "and", "or", "not", "in", "includes", "excludes", "like", "order", "by", "asc", "desc",
    "nulls", "first", "last", "limit", "offset", "group", "having", "for", "with", "using", "null", "true", "false",
];

/// Date literals with ranges (wire: SOQL date formats).
pub(crate) const DATE_FNS: &[&str] = &[
    "TODAY",
    "YESTERDAY",
    "TOMORROW",
    "LAST_WEEK",
    "THIS_WEEK",
    "NEXT_WEEK",
    "LAST_MONTH",
    "THIS_MONTH",
    "NEXT_MONTH",
    "LAST_YEAR",
    "THIS_YEAR",
    "NEXT_YEAR",
    "LAST_N_DAYS",
    "NEXT_N_DAYS",
];

/// Deepest nesting of parentheses, `NOT` and subqueries the parser follows. The parser recurses
/// once per level, on a thread with a small stack (the API's blocking pool): thousands of `(`
/// overflowed it and took the whole playground down. UNCONFIRMED: Salesforce's own limit and
/// wording; real queries nest a few levels.
pub(crate) const MAX_NESTING: usize = 64;

struct Grammar {
    toks: Vec<Token>,
    i: usize,
    /// Levels of nesting entered (see [`MAX_NESTING`]).
    depth: usize,
    /// Inside a semi-join or anti-join subquery, where another one may not appear.
    in_semi_join: bool,
}

type PResult<T> = Result<T, SyntaxError>;

impl Grammar {
    fn new(toks: Vec<Token>) -> Self {
        Self { toks, i: 0, depth: 0, in_semi_join: false }
    }
    /// Runs `f` one nesting level deeper, refusing to go past [`MAX_NESTING`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> PResult<T>) -> PResult<T> {
        if self.depth >= MAX_NESTING {
            let pos = self.peek().pos;
            return Err(SyntaxError { message: format!("the query nests more than {MAX_NESTING} levels"), pos });
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }
    fn peek(&self) -> &Token {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }
    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }
    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(s) if s.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.next();
        }
        yes
    }
    fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        if self.eat_kw(kw) { Ok(()) } else { Err(unexpected(self.peek())) }
    }
    fn is_punct(&self, p: &str) -> bool {
        self.peek().tok
            == Tok::Punct(match p {
                "(" => "(",
                ")" => ")",
                "," => ",",
                "." => ".",
                ":" => ":",
                "-" => "-",
                _ => "?",
            })
    }
    fn expect_punct(&mut self, p: &str) -> PResult<()> {
        if self.is_punct(p) {
            self.next();
            Ok(())
        } else {
            Err(unexpected(self.peek()))
        }
    }
    fn name(&mut self) -> PResult<(String, usize)> {
        let t = self.next();
        match t.tok {
            Tok::Ident(s) => Ok((s, t.pos)),
            _ => Err(unexpected(&t)),
        }
    }
    fn path(&mut self) -> PResult<Path> {
        let (first, pos) = self.name()?;
        if KEYWORDS.contains(&first.to_ascii_lowercase().as_str()) && !first.eq_ignore_ascii_case("last") {
            return Err(SyntaxError { message: format!("unexpected token: {first}"), pos });
        }
        let mut parts = vec![first];
        while self.is_punct(".") {
            self.next();
            parts.push(self.name()?.0);
        }
        Ok(Path { parts, pos })
    }
    fn number(&mut self) -> PResult<u64> {
        let t = self.next();
        match &t.tok {
            Tok::Num(n) => n.parse().map_err(|_| unexpected(&t)),
            _ => Err(unexpected(&t)),
        }
    }

    fn query(&mut self) -> PResult<Query> {
        self.nested(Self::query_body)
    }

    fn query_body(&mut self) -> PResult<Query> {
        self.expect_kw("select")?;
        let mut select = vec![self.item()?];
        while self.is_punct(",") {
            self.next();
            select.push(self.item()?);
        }
        self.expect_kw("from")?;
        let (from, from_pos) = self.name()?;
        let mut alias = None;
        if let Tok::Ident(a) = &self.peek().tok
            && !KEYWORDS.contains(&a.to_ascii_lowercase().as_str())
        {
            alias = Some(a.clone());
            self.next();
        }
        let mut q = Query {
            select,
            from,
            from_pos,
            alias,
            filter: None,
            group_by: Vec::new(),
            grouping: Grouping::Plain,
            having: None,
            order: Vec::new(),
            limit: None,
            offset: None,
        };
        if self.eat_kw("using") {
            self.expect_kw("scope")?;
            self.name()?;
        }
        if self.eat_kw("where") {
            q.filter = Some(self.or()?);
        }
        if self.eat_kw("with") {
            // WITH SECURITY_ENFORCED / USER_MODE: accepted, no effect here.
            self.name()?;
        }
        if self.eat_kw("group") {
            self.expect_kw("by")?;
            let sets = [("rollup", Grouping::Rollup), ("cube", Grouping::Cube)];
            let wrapped = sets.iter().find(|(kw, _)| self.is_kw(kw) && self.peek_is_punct(1, "(")).map(|(_, g)| *g);
            if let Some(g) = wrapped {
                self.next();
                self.next();
                q.grouping = g;
            }
            q.group_by.push(self.path()?);
            while self.is_punct(",") {
                self.next();
                q.group_by.push(self.path()?);
            }
            if wrapped.is_some() {
                self.expect_punct(")")?;
            }
            if self.eat_kw("having") {
                q.having = Some(self.or()?);
            }
        }
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            loop {
                let (path, agg) = match self.agg_func() {
                    Some(func) => {
                        let (arg, pos) = self.agg_args(func)?;
                        (arg.unwrap_or(Path { parts: Vec::new(), pos }), Some(func))
                    }
                    None => (self.path()?, None),
                };
                let desc = if self.eat_kw("desc") {
                    true
                } else {
                    self.eat_kw("asc");
                    false
                };
                let mut nulls_last = None;
                if self.eat_kw("nulls") {
                    if self.eat_kw("first") {
                        nulls_last = Some(false);
                    } else {
                        self.expect_kw("last")?;
                        nulls_last = Some(true);
                    }
                }
                q.order.push(Order { path, agg, desc, nulls_last });
                if !self.is_punct(",") {
                    break;
                }
                self.next();
            }
        }
        if self.eat_kw("limit") {
            q.limit = Some(self.number()?);
        }
        if self.eat_kw("offset") {
            q.offset = Some(self.number()?);
        }
        if self.eat_kw("for") {
            let (_, _) = self.name()?;
        }
        Ok(q)
    }

    fn item(&mut self) -> PResult<Item> {
        if self.is_punct("(") {
            self.next();
            let sub = self.query()?;
            self.expect_punct(")")?;
            return Ok(Item::Sub(Box::new(sub)));
        }
        if self.is_kw("fields") && self.peek_is_punct(1, "(") {
            let pos = self.next().pos;
            self.next();
            let t = self.next();
            let set = match &t.tok {
                Tok::Ident(s) if s.eq_ignore_ascii_case("standard") => FieldSet::Standard,
                Tok::Ident(s) if s.eq_ignore_ascii_case("custom") => FieldSet::Custom,
                Tok::Ident(s) if s.eq_ignore_ascii_case("all") => FieldSet::All,
                _ => return Err(unexpected(&t)),
            };
            self.expect_punct(")")?;
            return Ok(Item::Fields(set, pos));
        }
        if self.is_kw("typeof") && matches!(self.toks.get(self.i + 1).map(|t| &t.tok), Some(Tok::Ident(_))) {
            self.next();
            return self.type_of();
        }
        if matches!(self.peek().tok, Tok::Ident(_)) && self.peek_is_punct(1, "(") && self.agg_func().is_none() {
            return Err(unexpected(self.peek()));
        }
        if let Some(func) = self.agg_func() {
            let (arg, _) = self.agg_args(func)?;
            let mut alias = None;
            if let Tok::Ident(a) = &self.peek().tok
                && !KEYWORDS.contains(&a.to_ascii_lowercase().as_str())
            {
                alias = Some(a.clone());
                self.next();
            }
            return Ok(Item::Agg { func, arg, alias });
        }
        Ok(Item::Field(self.path()?))
    }

    fn peek_is_punct(&self, ahead: usize, p: &str) -> bool {
        matches!(self.toks.get(self.i + ahead).map(|t| &t.tok), Some(Tok::Punct(q)) if *q == p)
    }

    /// The aggregate function at the cursor (an identifier followed by `(`), not consumed.
    fn agg_func(&self) -> Option<Agg> {
        let Tok::Ident(s) = &self.peek().tok else { return None };
        if !self.peek_is_punct(1, "(") {
            return None;
        }
        match s.to_ascii_uppercase().as_str() {
            "COUNT" => Some(Agg::Count),
            "COUNT_DISTINCT" => Some(Agg::CountDistinct),
            "SUM" => Some(Agg::Sum),
            "AVG" => Some(Agg::Avg),
            "MIN" => Some(Agg::Min),
            "MAX" => Some(Agg::Max),
            _ => None,
        }
    }

    /// `FUNC ( [path] )` after [`Grammar::agg_func`]; answers the argument and the position.
    fn agg_args(&mut self, func: Agg) -> PResult<(Option<Path>, usize)> {
        let pos = self.next().pos;
        self.expect_punct("(")?;
        let arg = if self.is_punct(")") { None } else { Some(self.path()?) };
        self.expect_punct(")")?;
        if arg.is_none() && func != Agg::Count {
            return Err(unexpected(self.peek()));
        }
        Ok((arg, pos))
    }

    /// `TYPEOF rel WHEN Type THEN f, … [WHEN …] [ELSE f, …] END` after `TYPEOF`.
    fn type_of(&mut self) -> PResult<Item> {
        let rel = self.path()?;
        let mut whens = Vec::new();
        let fields = |g: &mut Self| -> PResult<Vec<Path>> {
            let mut out = vec![g.path()?];
            while g.is_punct(",") {
                g.next();
                out.push(g.path()?);
            }
            Ok(out)
        };
        while self.eat_kw("when") {
            let (ty, _) = self.name()?;
            self.expect_kw("then")?;
            whens.push((ty, fields(self)?));
        }
        if whens.is_empty() {
            return Err(unexpected(self.peek()));
        }
        let otherwise = if self.eat_kw("else") { fields(self)? } else { Vec::new() };
        self.expect_kw("end")?;
        Ok(Item::TypeOf { rel, whens, otherwise })
    }

    fn or(&mut self) -> PResult<Cond> {
        let mut parts = vec![self.and()?];
        while self.eat_kw("or") {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Cond::Or(parts) })
    }
    fn and(&mut self) -> PResult<Cond> {
        let mut parts = vec![self.not()?];
        while self.eat_kw("and") {
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Cond::And(parts) })
    }
    fn not(&mut self) -> PResult<Cond> {
        if self.eat_kw("not") {
            return Ok(Cond::Not(Box::new(self.nested(Self::not)?)));
        }
        if self.is_punct("(") {
            self.next();
            let c = self.nested(Self::or)?;
            self.expect_punct(")")?;
            return Ok(c);
        }
        self.predicate()
    }
    fn predicate(&mut self) -> PResult<Cond> {
        if let Some(func) = self.agg_func() {
            let (arg, _) = self.agg_args(func)?;
            let op = self.operator()?;
            return Ok(Cond::AggCmp(func, arg, op, self.value()?));
        }
        let path = self.path()?;
        if self.eat_kw("like") {
            return Ok(Cond::Cmp(path, Op::Like, self.value()?));
        }
        let negated = self.is_kw("not");
        if negated {
            self.next();
            self.expect_kw("in")?;
        }
        if negated || self.eat_kw("in") {
            let is_select = matches!(self.toks.get(self.i + 1).map(|t| &t.tok), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("select"));
            if self.is_punct("(") && is_select {
                // Salesforce runs no semi-join inside another (each one nested here also made
                // the compiled SQL deeper than SQLite allows). UNCONFIRMED: the exact wording.
                if self.in_semi_join {
                    return Err(SyntaxError {
                        message: "a semi-join or anti-join cannot be nested in another".into(),
                        pos: path.pos,
                    });
                }
                self.next();
                self.in_semi_join = true;
                let sub = self.query();
                self.in_semi_join = false;
                let sub = sub?;
                self.expect_punct(")")?;
                return Ok(Cond::InQuery(path, negated, Box::new(sub)));
            }
            return Ok(Cond::In(path, negated, self.list()?));
        }
        for (kw, excludes) in [("includes", false), ("excludes", true)] {
            if self.eat_kw(kw) {
                let mut values = Vec::new();
                for v in self.list()? {
                    match v {
                        Lit::Str(s) => values.push(s),
                        _ => {
                            return Err(SyntaxError {
                                message: "INCLUDES and EXCLUDES take quoted values".into(),
                                pos: path.pos,
                            });
                        }
                    }
                }
                return Ok(Cond::Includes(path, excludes, values));
            }
        }
        let op = self.operator()?;
        Ok(Cond::Cmp(path, op, self.value()?))
    }
    fn operator(&mut self) -> PResult<Op> {
        let t = self.next();
        Ok(match t.tok {
            Tok::Punct("=") => Op::Eq,
            Tok::Punct("!=") | Tok::Punct("<>") => Op::Ne,
            Tok::Punct("<") => Op::Lt,
            Tok::Punct("<=") => Op::Le,
            Tok::Punct(">") => Op::Gt,
            Tok::Punct(">=") => Op::Ge,
            _ => return Err(unexpected(&t)),
        })
    }
    fn list(&mut self) -> PResult<Vec<Lit>> {
        self.expect_punct("(")?;
        let mut out = vec![self.value()?];
        while self.is_punct(",") {
            self.next();
            out.push(self.value()?);
        }
        self.expect_punct(")")?;
        Ok(out)
    }
    fn value(&mut self) -> PResult<Lit> {
        let t = self.next();
        Ok(match t.tok {
            Tok::Str(s) => Lit::Str(s),
            Tok::Num(n) => Lit::Num(n),
            Tok::Punct("-") | Tok::Punct("+") => {
                let sign = if t.tok == Tok::Punct("-") { "-" } else { "" };
                let n = self.next();
                match n.tok {
                    Tok::Num(v) => Lit::Num(format!("{sign}{v}")),
                    _ => return Err(unexpected(&n)),
                }
            }
            Tok::Date(d) => Lit::Date(d),
            Tok::DateTime(d) => Lit::DateTime(d),
            Tok::Ident(ref s) => {
                let up = s.to_ascii_uppercase();
                match up.as_str() {
                    "NULL" => Lit::Null,
                    "TRUE" => Lit::Bool(true),
                    "FALSE" => Lit::Bool(false),
                    f if DATE_FNS.contains(&f) => {
                        if f.contains("_N_") {
                            self.expect_punct(":")?;
                            let n = self.number()?;
                            Lit::DateFn(up, Some(i64::try_from(n).unwrap_or(i64::MAX)))
                        } else {
                            Lit::DateFn(up, None)
                        }
                    }
                    _ => return Err(unexpected(&t)),
                }
            }
            _ => return Err(unexpected(&t)),
        })
    }
}

/// Parses a SOQL query.
pub(crate) fn parse(s: &str) -> Result<Query, SyntaxError> {
    let toks = lex(s)?;
    let mut p = Grammar::new(toks);
    let q = p.query()?;
    if p.peek().tok != Tok::Eof {
        return Err(unexpected(p.peek()));
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_fields_paths_subqueries_and_clauses() {
        let q = parse(
            "SELECT Id, Account.Owner.Name, (SELECT Id FROM Contacts WHERE LastName != null) FROM Account \
             WHERE (Name LIKE 'A\\%%' OR NOT Industry IN ('Banking', 'Energy')) AND CreatedDate = LAST_N_DAYS:30 \
             ORDER BY Name DESC NULLS LAST, Id LIMIT 10 OFFSET 5",
        )
        .unwrap();
        assert_eq!(q.from, "Account");
        assert_eq!(q.select.len(), 3);
        assert!(matches!(&q.select[1], Item::Field(p) if p.parts == f(&["Account", "Owner", "Name"])));
        assert!(matches!(&q.select[2], Item::Sub(s) if s.from == "Contacts"));
        assert_eq!((q.limit, q.offset), (Some(10), Some(5)));
        assert_eq!(q.order.len(), 2);
        assert!(q.order[0].desc && q.order[0].nulls_last == Some(true));
        let Some(Cond::And(parts)) = &q.filter else { panic!("{:?}", q.filter) };
        assert!(matches!(&parts[0], Cond::Or(_)));
        assert!(matches!(&parts[1], Cond::Cmp(_, Op::Eq, Lit::DateFn(n, Some(30))) if n == "LAST_N_DAYS"));
    }

    #[test]
    fn literals_and_escapes() {
        let q = parse("SELECT Id FROM Contact WHERE Name = 'O\\'Brien\\n' AND Amount > -1.5 AND Birthdate < 2020-01-31 AND CreatedDate >= 2020-01-31T10:00:00.000+0000 AND IsDeleted = false").unwrap();
        let Some(Cond::And(p)) = q.filter else { panic!() };
        assert_eq!(p[0], Cond::Cmp(Path { parts: f(&["Name"]), pos: 29 }, Op::Eq, Lit::Str("O'Brien\n".into())));
        assert!(matches!(&p[1], Cond::Cmp(_, Op::Gt, Lit::Num(n)) if n == "-1.5"));
        assert!(matches!(&p[2], Cond::Cmp(_, Op::Lt, Lit::Date(d)) if d == "2020-01-31"));
        assert!(matches!(&p[3], Cond::Cmp(_, Op::Ge, Lit::DateTime(_))));
        assert!(matches!(&p[4], Cond::Cmp(_, Op::Eq, Lit::Bool(false))));
    }

    #[test]
    fn errors_name_the_unexpected_token() {
        for (q, want) in [
            ("q=SELECT Id FROM Account", "unexpected token: q"),
            ("SELECT Id FORM Account", "unexpected token: FORM"),
            ("SELECT Id FROM Account WHERE", "unexpected token: <EOF>"),
            ("SELECT Id FROM Account WHERE Name = ", "unexpected token: <EOF>"),
            ("SELECT Id FROM Account LIMIT x", "unexpected token: x"),
            ("SELECT Id FROM Account WHERE Name == 'x'", "unexpected token: ="),
            ("SELECT Id FROM Account WHERE Name = 'x", "unexpected token: <EOF>"),
            ("SELECT FROM Account", "unexpected token: FROM"),
        ] {
            assert_eq!(parse(q).unwrap_err().message, want, "{q}");
        }
    }

    #[test]
    fn sosl_subset() {
        let s = parse_search("FIND {Acme\\}s} IN ALL FIELDS RETURNING Account(Id, Name WHERE Industry = 'Banking' LIMIT 5), Contact LIMIT 20").unwrap();
        assert_eq!(s.term, "Acme}s");
        assert_eq!(s.returning.len(), 2);
        assert_eq!(s.returning[0].limit, Some(5));
        assert_eq!(s.limit, Some(20));
        assert_eq!(
            parse_search("bar").unwrap_err().message,
            "No search term found. The search term must be enclosed in braces."
        );
    }
}
