//! The SOQL subset, and the SOSL subset `search` understands: a winnow lexer (identifiers,
//! quoted strings with escapes, numbers, date and dateTime literals, punctuation) and a
//! recursive-descent parser over its tokens that reports Salesforce's `unexpected token: X`.
//!
//! ```text
//! query    := SELECT item (',' item)* FROM name [alias] [WHERE cond] [GROUP BY path, …]
//!             [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]
//!             [FOR VIEW|REFERENCE|UPDATE]
//! item     := path | '(' query ')' | COUNT '(' [path] ')' [alias] | SUM|AVG|MIN|MAX|COUNT_DISTINCT '(' path ')' [alias]
//! cond     := and (OR and)* ; and := not (AND not)* ; not := NOT not | '(' cond ')' | predicate
//! predicate:= path op value | path [NOT] IN '(' value, … ')' | path INCLUDES|EXCLUDES '(' 'a;b', … ')'
//! value    := NULL | TRUE | FALSE | number | 'string' | 2024-01-31 | 2024-01-31T00:00:00Z
//!             | TODAY | YESTERDAY | TOMORROW | LAST_N_DAYS:n | NEXT_N_DAYS:n | …
//! ```

use winnow::ascii::digit1;
use winnow::combinator::{alt, opt};
use winnow::prelude::*;
use winnow::token::{one_of, take_while};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Date(String),
    DateTime(String),
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) raw: String,
    pub(crate) pos: usize,
}

/// A SOQL problem: `MALFORMED_QUERY` with Salesforce's wording.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub(crate) message: String,
    pub(crate) pos: usize,
}

fn unexpected(t: &Token) -> SyntaxError {
    let shown = if t.tok == Tok::Eof { "<EOF>".to_owned() } else { t.raw.clone() };
    SyntaxError { message: format!("unexpected token: {shown}"), pos: t.pos }
}

fn ident(i: &mut &str) -> ModalResult<String> {
    (
        one_of(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(0.., |c: char| c.is_ascii_alphanumeric() || c == '_'),
    )
        .take()
        .map(str::to_owned)
        .parse_next(i)
}

fn digits(n: usize) -> impl FnMut(&mut &str) -> ModalResult<()> {
    move |i: &mut &str| take_while(n..=n, |c: char| c.is_ascii_digit()).void().parse_next(i)
}

fn date(i: &mut &str) -> ModalResult<String> {
    (digits(4), '-', digits(2), '-', digits(2)).take().map(str::to_owned).parse_next(i)
}

fn datetime(i: &mut &str) -> ModalResult<String> {
    (
        date,
        one_of(['T', 't']),
        digits(2),
        ':',
        digits(2),
        ':',
        digits(2),
        opt(('.', digit1)),
        alt((one_of(['Z', 'z']).void(), (one_of(['+', '-']), digits(2), opt(':'), digits(2)).void())),
    )
        .take()
        .map(str::to_owned)
        .parse_next(i)
}

fn number(i: &mut &str) -> ModalResult<String> {
    alt(((digit1, opt(('.', digit1))).take(), ('.', digit1).take())).map(str::to_owned).parse_next(i)
}

/// Reads a quoted string after its opening quote. Escapes: `\'` `\"` `\\` `\n` `\r` `\t` `\b`
/// `\f` `\u0041`; `\%` and `\_` stay escaped (they matter to LIKE only).
fn quoted(s: &str, start: usize) -> Result<(String, usize), SyntaxError> {
    let mut out = String::new();
    let mut chars = s[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' => return Ok((out, start + 1 + i + 1)),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    '\'' | '"' | '\\' => out.push(e),
                    '%' | '_' => {
                        out.push('\\');
                        out.push(e);
                    }
                    'u' => {
                        let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                        let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                        match ch {
                            Some(ch) if hex.len() == 4 => out.push(ch),
                            _ => {
                                return Err(SyntaxError {
                                    message: "Invalid unicode escape sequence".into(),
                                    pos: start,
                                });
                            }
                        }
                    }
                    other => {
                        return Err(SyntaxError {
                            message: format!(
                                "Invalid string literal '\\{other}'. Illegal character sequence '\\{other}' in string literal."
                            ),
                            pos: start,
                        });
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(SyntaxError { message: "unexpected token: <EOF>".into(), pos: s.len() })
}

pub(crate) fn lex(s: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut out = Vec::new();
    let mut pos = 0;
    let bytes = s.as_bytes();
    while pos < s.len() {
        let c = bytes[pos];
        if c.is_ascii_whitespace() {
            pos += 1;
            continue;
        }
        let start = pos;
        if c == b'\'' {
            let (text, end) = quoted(s, pos)?;
            out.push(Token { tok: Tok::Str(text), raw: s[start..end].to_owned(), pos: start });
            pos = end;
            continue;
        }
        let mut rest = &s[pos..];
        let tok = if c.is_ascii_digit() || (c == b'.' && bytes.get(pos + 1).is_some_and(u8::is_ascii_digit)) {
            if let Ok(d) = datetime.parse_next(&mut rest) {
                Tok::DateTime(d)
            } else if let Ok(d) = {
                rest = &s[pos..];
                date.parse_next(&mut rest)
            } {
                Tok::Date(d)
            } else {
                rest = &s[pos..];
                let n = number
                    .parse_next(&mut rest)
                    .map_err(|_| SyntaxError { message: "unexpected token".into(), pos })?;
                Tok::Num(n)
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            Tok::Ident(
                ident.parse_next(&mut rest).map_err(|_| SyntaxError { message: "unexpected token".into(), pos })?,
            )
        } else {
            let two = s.get(pos..pos + 2).unwrap_or("");
            let p: &'static str = match two {
                "!=" => "!=",
                "<>" => "<>",
                "<=" => "<=",
                ">=" => ">=",
                _ => match c {
                    b'(' => "(",
                    b')' => ")",
                    b',' => ",",
                    b'.' => ".",
                    b'=' => "=",
                    b'<' => "<",
                    b'>' => ">",
                    b':' => ":",
                    b'-' => "-",
                    b'+' => "+",
                    _ => {
                        let ch = s[pos..].chars().next().unwrap_or('?');
                        return Err(SyntaxError { message: format!("unexpected token: {ch}"), pos });
                    }
                },
            };
            rest = &s[pos + p.len()..];
            Tok::Punct(p)
        };
        let end = s.len() - rest.len();
        out.push(Token { tok, raw: s[start..end].to_owned(), pos: start });
        pos = end;
    }
    out.push(Token { tok: Tok::Eof, raw: String::new(), pos: s.len() });
    Ok(out)
}

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
    Includes(Path, bool, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Order {
    pub(crate) path: Path,
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

struct Grammar {
    toks: Vec<Token>,
    i: usize,
}

type PResult<T> = Result<T, SyntaxError>;

impl Grammar {
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
            q.group_by.push(self.path()?);
            while self.is_punct(",") {
                self.next();
                q.group_by.push(self.path()?);
            }
        }
        if self.eat_kw("order") {
            self.expect_kw("by")?;
            loop {
                let path = self.path()?;
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
                q.order.push(Order { path, desc, nulls_last });
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
        let func = match &self.peek().tok {
            Tok::Ident(s) if self.toks.get(self.i + 1).is_some_and(|t| t.tok == Tok::Punct("(")) => {
                match s.to_ascii_uppercase().as_str() {
                    "COUNT" => Some(Agg::Count),
                    "COUNT_DISTINCT" => Some(Agg::CountDistinct),
                    "SUM" => Some(Agg::Sum),
                    "AVG" => Some(Agg::Avg),
                    "MIN" => Some(Agg::Min),
                    "MAX" => Some(Agg::Max),
                    _ => return Err(unexpected(self.peek())),
                }
            }
            _ => None,
        };
        if let Some(func) = func {
            self.next();
            self.expect_punct("(")?;
            let arg = if self.is_punct(")") { None } else { Some(self.path()?) };
            self.expect_punct(")")?;
            if arg.is_none() && func != Agg::Count {
                return Err(unexpected(self.peek()));
            }
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
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        if self.is_punct("(") {
            self.next();
            let c = self.or()?;
            self.expect_punct(")")?;
            return Ok(c);
        }
        self.predicate()
    }
    fn predicate(&mut self) -> PResult<Cond> {
        let path = self.path()?;
        if self.eat_kw("like") {
            return Ok(Cond::Cmp(path, Op::Like, self.value()?));
        }
        if self.eat_kw("in") {
            return Ok(Cond::In(path, false, self.list()?));
        }
        if self.is_kw("not") {
            self.next();
            self.expect_kw("in")?;
            return Ok(Cond::In(path, true, self.list()?));
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
        let t = self.next();
        let op = match t.tok {
            Tok::Punct("=") => Op::Eq,
            Tok::Punct("!=") | Tok::Punct("<>") => Op::Ne,
            Tok::Punct("<") => Op::Lt,
            Tok::Punct("<=") => Op::Le,
            Tok::Punct(">") => Op::Gt,
            Tok::Punct(">=") => Op::Ge,
            _ => return Err(unexpected(&t)),
        };
        Ok(Cond::Cmp(path, op, self.value()?))
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
    let mut p = Grammar { toks, i: 0 };
    let q = p.query()?;
    if p.peek().tok != Tok::Eof {
        return Err(unexpected(p.peek()));
    }
    Ok(q)
}

/// One `RETURNING` entry of a SOSL search.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Returning {
    pub(crate) object: String,
    pub(crate) pos: usize,
    pub(crate) fields: Vec<Path>,
    pub(crate) filter: Option<Cond>,
    pub(crate) order: Vec<Order>,
    pub(crate) limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Search {
    pub(crate) term: String,
    pub(crate) returning: Vec<Returning>,
    pub(crate) limit: Option<u64>,
}

/// Parses `FIND {term} [IN ALL FIELDS] [RETURNING Obj(fields [WHERE …] [ORDER BY …] [LIMIT n]), …] [LIMIT n]`.
pub(crate) fn parse_search(s: &str) -> Result<Search, SyntaxError> {
    let no_term =
        || SyntaxError { message: "No search term found. The search term must be enclosed in braces.".into(), pos: 0 };
    let trimmed = s.trim_start();
    let rest = trimmed
        .get(..4)
        .filter(|f| f.eq_ignore_ascii_case("find"))
        .map(|_| trimmed[4..].trim_start())
        .ok_or_else(no_term)?;
    let body = rest.strip_prefix('{').ok_or_else(no_term)?;
    let mut term = String::new();
    let mut end = None;
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, e)) = chars.next() {
                    term.push(e);
                }
            }
            '}' => {
                end = Some(i);
                break;
            }
            c => term.push(c),
        }
    }
    let end = end.ok_or_else(no_term)?;
    let offset = s.len() - body.len() + end + 1;
    let mut p = Grammar { toks: lex(&s[offset..])?, i: 0 };
    for t in &mut p.toks {
        t.pos += offset;
    }
    if p.eat_kw("in") {
        p.name()?;
        p.expect_kw("fields")?;
    }
    let mut out = Search { term: term.trim().to_owned(), returning: Vec::new(), limit: None };
    if p.eat_kw("returning") {
        loop {
            let (object, pos) = p.name()?;
            let mut r = Returning { object, pos, fields: Vec::new(), filter: None, order: Vec::new(), limit: None };
            if p.is_punct("(") {
                p.next();
                r.fields.push(p.path()?);
                while p.is_punct(",") {
                    p.next();
                    r.fields.push(p.path()?);
                }
                if p.eat_kw("where") {
                    r.filter = Some(p.or()?);
                }
                if p.eat_kw("order") {
                    p.expect_kw("by")?;
                    loop {
                        let path = p.path()?;
                        let desc = p.eat_kw("desc") || {
                            p.eat_kw("asc");
                            false
                        };
                        r.order.push(Order { path, desc, nulls_last: None });
                        if !p.is_punct(",") {
                            break;
                        }
                        p.next();
                    }
                }
                if p.eat_kw("limit") {
                    r.limit = Some(p.number()?);
                }
                p.expect_punct(")")?;
            }
            out.returning.push(r);
            if !p.is_punct(",") {
                break;
            }
            p.next();
        }
    }
    if p.eat_kw("limit") {
        out.limit = Some(p.number()?);
    }
    if p.peek().tok != Tok::Eof {
        return Err(unexpected(p.peek()));
    }
    Ok(out)
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
