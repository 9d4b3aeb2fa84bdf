//! A SOQL builder that cannot be injected: every literal is quoted and escaped by Salesforce's
//! rules, every identifier is checked, and nothing the caller passes is pasted into the text
//! unchecked.
//!
//! Escapes inside quoted strings (Salesforce SOQL reference, "Quoted String Escape Sequences"):
//! `\'` `\"` `\\` `\n` `\r` `\t` `\b` `\f`; inside a LIKE pattern also `\%` and `\_`, so a
//! value can be matched literally ([`Condition::like_contains`] and friends).
//!
//! ```
//! use forcelink_client::soql::{Condition, Order, Select};
//! let q = Select::from("Account")
//!     .fields(["Id", "Name", "Owner.Name"])
//!     .filter(Condition::eq("Name", "O'Brien \\ Sons").and(Condition::gt("AnnualRevenue", 1_000_000)))
//!     .order_by("Name", Order::Asc)
//!     .limit(10)
//!     .build()
//!     .unwrap();
//! assert_eq!(
//!     q,
//!     "SELECT Id, Name, Owner.Name FROM Account WHERE (Name = 'O\\'Brien \\\\ Sons' AND AnnualRevenue > 1000000) ORDER BY Name ASC LIMIT 10"
//! );
//! ```

use std::fmt::Write as _;

use crate::error::ClientError;
use crate::types::MAX_API_NAME_LEN;

/// Deepest relationship path accepted (`A.B.C.D.E.Field`): Salesforce allows five levels.
pub const MAX_RELATIONSHIP_DEPTH: usize = 5;

/// The body of a quoted SOQL string for `value` (without the quotes).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out
}

/// `value` as a quoted SOQL string literal: `'O\'Brien'`.
pub fn quote(value: &str) -> String {
    format!("'{}'", escape(value))
}

/// The body of a LIKE pattern matching `value` literally: [`escape`] plus `\%` and `\_`, and a
/// backslash escaped twice (once for the string literal, once for the pattern, where `\` is
/// LIKE's escape character). UNCONFIRMED: Salesforce documents only `\%` and `\_` inside LIKE;
/// the doubled backslash is the reading consistent with both escape layers.
pub fn escape_like(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
            '%' => out.push_str("\\%"),
            '_' => out.push_str("\\_"),
            c => out.push_str(&escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out
}

/// A value in a condition.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Literal {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// Must be finite.
    Decimal(f64),
    /// Quoted and escaped.
    Text(String),
    /// `YYYY-MM-DD`, checked.
    Date(String),
    /// `YYYY-MM-DDThh:mm:ss[.sss](Z|±hh:mm)`, checked.
    DateTime(String),
    /// A date literal such as `TODAY` or `LAST_N_DAYS:30`, checked (capitals, `_`, optional `:n`).
    DateLiteral(String),
}

impl From<&str> for Literal {
    fn from(v: &str) -> Self {
        Literal::Text(v.to_owned())
    }
}
impl From<String> for Literal {
    fn from(v: String) -> Self {
        Literal::Text(v)
    }
}
impl From<&String> for Literal {
    fn from(v: &String) -> Self {
        Literal::Text(v.clone())
    }
}
impl From<bool> for Literal {
    fn from(v: bool) -> Self {
        Literal::Bool(v)
    }
}
impl From<i64> for Literal {
    fn from(v: i64) -> Self {
        Literal::Int(v)
    }
}
impl From<i32> for Literal {
    fn from(v: i32) -> Self {
        Literal::Int(v.into())
    }
}
impl From<u32> for Literal {
    fn from(v: u32) -> Self {
        Literal::Int(v.into())
    }
}
impl From<f64> for Literal {
    fn from(v: f64) -> Self {
        Literal::Decimal(v)
    }
}
impl<T: Into<Literal>> From<Option<T>> for Literal {
    fn from(v: Option<T>) -> Self {
        v.map_or(Literal::Null, Into::into)
    }
}

fn invalid(what: String) -> ClientError {
    ClientError::InvalidInput(what)
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_date(s: &str) -> bool {
    let p: Vec<&str> = s.split('-').collect();
    p.len() == 3 && digits(p[0], 4) && digits(p[1], 2) && digits(p[2], 2)
}

fn is_datetime(s: &str) -> bool {
    let Some((date, time)) = s.split_once('T') else { return false };
    if !is_date(date) {
        return false;
    }
    let (clock, zone) = if let Some(t) = time.strip_suffix('Z') {
        (t, "")
    } else if time.len() > 6 && matches!(time.as_bytes()[time.len() - 6], b'+' | b'-') {
        time.split_at(time.len() - 6)
    } else {
        return false;
    };
    let zone_ok = zone.is_empty() || {
        let z = &zone[1..];
        z.len() == 5 && digits(&z[..2], 2) && &z[2..3] == ":" && digits(&z[3..], 2)
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let hms: Vec<&str> = hms.split(':').collect();
    zone_ok
        && hms.len() == 3
        && hms.iter().all(|p| digits(p, 2))
        && (frac.is_empty() || (frac.len() <= 3 && frac.bytes().all(|b| b.is_ascii_digit())))
}

fn is_date_literal(s: &str) -> bool {
    let (name, n) = s.split_once(':').unwrap_or((s, ""));
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        && (n.is_empty() || (n.len() <= 6 && n.bytes().all(|b| b.is_ascii_digit())))
}

impl Literal {
    fn write(&self, out: &mut String) -> Result<(), ClientError> {
        match self {
            Literal::Null => out.push_str("null"),
            Literal::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Literal::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Literal::Decimal(d) if d.is_finite() => {
                let _ = write!(out, "{d}");
            }
            Literal::Decimal(d) => return Err(invalid(format!("{d} is not a SOQL number"))),
            Literal::Text(t) => out.push_str(&quote(t)),
            Literal::Date(d) if is_date(d) => out.push_str(d),
            Literal::DateTime(d) if is_datetime(d) => out.push_str(d),
            Literal::DateLiteral(d) if is_date_literal(d) => out.push_str(d),
            Literal::Date(d) | Literal::DateTime(d) | Literal::DateLiteral(d) => {
                return Err(invalid(format!("{d:?} is not a SOQL date, dateTime or date literal")));
            }
        }
        Ok(())
    }
}

/// Checks a field path: API names joined by dots, at most [`MAX_RELATIONSHIP_DEPTH`] relationships.
pub fn check_field(path: &str) -> Result<(), ClientError> {
    let parts: Vec<&str> = path.split('.').collect();
    let ok = parts.len() <= MAX_RELATIONSHIP_DEPTH + 1
        && parts.iter().all(|p| {
            let b = p.as_bytes();
            !b.is_empty()
                && b.len() <= MAX_API_NAME_LEN
                && b[0].is_ascii_alphabetic()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        });
    if ok { Ok(()) } else { Err(invalid(format!("{path:?} is not a field name or relationship path"))) }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// How a LIKE pattern is anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Contains,
    StartsWith,
    EndsWith,
    Exactly,
}

/// A WHERE condition; identifiers and values are checked when the query is built.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Condition {
    /// `field op value`.
    Compare {
        /// A field name or relationship path.
        field: String,
        /// The comparison.
        op: Op,
        /// The value, quoted when built.
        value: Literal,
    },
    /// `field LIKE '…'`, `value` matched literally.
    Like {
        /// A field name or relationship path.
        field: String,
        /// The text to match; its `%` and `_` are escaped when built.
        value: String,
        /// The text starts the value (no `%` before it).
        anchor_start: bool,
        /// The text ends the value (no `%` after it).
        anchor_end: bool,
    },
    /// `field [NOT] IN (…)`.
    In {
        /// A field name or relationship path.
        field: String,
        /// The values; at least one when built.
        values: Vec<Literal>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `(a AND b …)`; empty is refused when built.
    And(Vec<Condition>),
    /// `(a OR b …)`; empty is refused when built.
    Or(Vec<Condition>),
    /// `(NOT c)`.
    Not(Box<Condition>),
}

impl Condition {
    fn compare(field: &str, op: Op, value: impl Into<Literal>) -> Self {
        Condition::Compare { field: field.to_owned(), op, value: value.into() }
    }
    /// `field = value` (`field = null` for [`Literal::Null`]).
    pub fn eq(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, Op::Eq, value)
    }
    /// `field != value` (`field != null` for [`Literal::Null`]).
    pub fn ne(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, Op::Ne, value)
    }
    /// `field < value`.
    pub fn lt(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, Op::Lt, value)
    }
    /// `field <= value`.
    pub fn le(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, Op::Le, value)
    }
    /// `field > value`.
    pub fn gt(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, Op::Gt, value)
    }
    /// `field >= value`.
    pub fn ge(field: &str, value: impl Into<Literal>) -> Self {
        Self::compare(field, Op::Ge, value)
    }
    fn like(field: &str, value: &str, anchor: Anchor) -> Self {
        Condition::Like {
            field: field.to_owned(),
            value: value.to_owned(),
            anchor_start: matches!(anchor, Anchor::StartsWith | Anchor::Exactly),
            anchor_end: matches!(anchor, Anchor::EndsWith | Anchor::Exactly),
        }
    }
    /// `field LIKE '%value%'`, `value` matched literally (its `%` and `_` escaped).
    pub fn like_contains(field: &str, value: &str) -> Self {
        Self::like(field, value, Anchor::Contains)
    }
    /// `field LIKE 'value%'`, `value` matched literally.
    pub fn like_starts_with(field: &str, value: &str) -> Self {
        Self::like(field, value, Anchor::StartsWith)
    }
    /// `field LIKE '%value'`, `value` matched literally.
    pub fn like_ends_with(field: &str, value: &str) -> Self {
        Self::like(field, value, Anchor::EndsWith)
    }
    /// `field LIKE 'value'` (case-insensitive equality, no wildcards).
    pub fn like_exactly(field: &str, value: &str) -> Self {
        Self::like(field, value, Anchor::Exactly)
    }
    /// `field IN (…)`; an empty list is refused when built (Salesforce rejects `IN ()`).
    pub fn is_in<I, V>(field: &str, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Literal>,
    {
        Condition::In { field: field.to_owned(), values: values.into_iter().map(Into::into).collect(), negated: false }
    }
    /// `field NOT IN (…)`; an empty list is refused when built.
    pub fn not_in<I, V>(field: &str, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<Literal>,
    {
        Condition::In { field: field.to_owned(), values: values.into_iter().map(Into::into).collect(), negated: true }
    }
    /// `self AND other` (flattened into an existing AND).
    pub fn and(self, other: Condition) -> Self {
        match self {
            Condition::And(mut v) => {
                v.push(other);
                Condition::And(v)
            }
            c => Condition::And(vec![c, other]),
        }
    }
    /// `self OR other` (flattened into an existing OR).
    pub fn or(self, other: Condition) -> Self {
        match self {
            Condition::Or(mut v) => {
                v.push(other);
                Condition::Or(v)
            }
            c => Condition::Or(vec![c, other]),
        }
    }
    /// `NOT self`.
    pub fn negate(self) -> Self {
        Condition::Not(Box::new(self))
    }

    fn write(&self, out: &mut String) -> Result<(), ClientError> {
        match self {
            Condition::Compare { field, op, value } => {
                check_field(field)?;
                if *value == Literal::Null && !matches!(op, Op::Eq | Op::Ne) {
                    return Err(invalid(format!("null can only be compared with = or != ({field})")));
                }
                let _ = write!(out, "{field} {} ", op.as_str());
                value.write(out)?;
            }
            Condition::Like { field, value, anchor_start, anchor_end } => {
                check_field(field)?;
                let _ = write!(
                    out,
                    "{field} LIKE '{}{}{}'",
                    if *anchor_start { "" } else { "%" },
                    escape_like(value),
                    if *anchor_end { "" } else { "%" }
                );
            }
            Condition::In { field, values, negated } => {
                check_field(field)?;
                if values.is_empty() {
                    return Err(invalid(format!("IN needs at least one value ({field})")));
                }
                let _ = write!(out, "{field} {}IN (", if *negated { "NOT " } else { "" });
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out)?;
                }
                out.push(')');
            }
            Condition::And(items) | Condition::Or(items) => {
                if items.is_empty() {
                    return Err(invalid("an empty AND/OR".to_owned()));
                }
                let joiner = if matches!(self, Condition::And(_)) { " AND " } else { " OR " };
                out.push('(');
                for (i, c) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(joiner);
                    }
                    c.write(out)?;
                }
                out.push(')');
            }
            Condition::Not(c) => {
                out.push_str("(NOT ");
                c.write(out)?;
                out.push(')');
            }
        }
        Ok(())
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `ASC`.
    Asc,
    /// `DESC`.
    Desc,
}

/// What a query selects.
#[derive(Debug, Clone, PartialEq)]
enum Projection {
    Fields(Vec<String>),
    Count,
}

/// `SELECT … FROM … [WHERE …] [ORDER BY …] [LIMIT n] [OFFSET n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    object: String,
    projection: Projection,
    filter: Option<Condition>,
    order: Vec<(String, Order)>,
    limit: Option<u64>,
    offset: Option<u64>,
}

impl Select {
    /// A query on `object`; name fields with [`Select::fields`] (defaults to `Id`).
    pub fn from(object: &str) -> Self {
        Self {
            object: object.to_owned(),
            projection: Projection::Fields(Vec::new()),
            filter: None,
            order: Vec::new(),
            limit: None,
            offset: None,
        }
    }
    /// `SELECT COUNT() FROM object`: the answer's `totalSize` is the count.
    pub fn count(object: &str) -> Self {
        Self { projection: Projection::Count, ..Self::from(object) }
    }
    /// Adds fields to select (API names or relationship paths such as `Account.Name`).
    pub fn fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if let Projection::Fields(v) = &mut self.projection {
            v.extend(fields.into_iter().map(|f| f.as_ref().to_owned()));
        }
        self
    }
    /// Adds a condition (ANDed with any earlier one).
    pub fn filter(mut self, c: Condition) -> Self {
        self.filter = Some(match self.filter {
            Some(f) => f.and(c),
            None => c,
        });
        self
    }
    /// Adds `ORDER BY field ASC|DESC` (after any earlier ones).
    pub fn order_by(mut self, field: &str, order: Order) -> Self {
        self.order.push((field.to_owned(), order));
        self
    }
    /// `LIMIT n`.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }
    /// `OFFSET n` (Salesforce allows at most 2,000).
    pub fn offset(mut self, n: u64) -> Self {
        self.offset = Some(n);
        self
    }

    /// The SOQL text, or the first identifier or value that is not acceptable.
    pub fn build(&self) -> Result<String, ClientError> {
        crate::types::SObjectType::new(self.object.as_str())?;
        let mut out = String::from("SELECT ");
        match &self.projection {
            Projection::Count => out.push_str("COUNT()"),
            Projection::Fields(f) if f.is_empty() => out.push_str("Id"),
            Projection::Fields(f) => {
                for (i, field) in f.iter().enumerate() {
                    check_field(field)?;
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(field);
                }
            }
        }
        let _ = write!(out, " FROM {}", self.object);
        if let Some(c) = &self.filter {
            out.push_str(" WHERE ");
            c.write(&mut out)?;
        }
        for (i, (field, order)) in self.order.iter().enumerate() {
            check_field(field)?;
            out.push_str(if i == 0 { " ORDER BY " } else { ", " });
            let _ = write!(out, "{field} {}", if *order == Order::Asc { "ASC" } else { "DESC" });
        }
        if let Some(n) = self.limit {
            let _ = write!(out, " LIMIT {n}");
        }
        if let Some(n) = self.offset {
            let _ = write!(out, " OFFSET {n}");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A reference lexer for the parts of SOQL the builder writes: words, punctuation and quoted
    /// strings with Salesforce's escapes. It is independent of the builder's escaping code.
    #[derive(Debug, PartialEq)]
    enum Tok {
        Word(String),
        Punct(String),
        Str(String),
    }

    fn lex(s: &str) -> Result<Vec<Tok>, String> {
        let mut out = Vec::new();
        let mut it = s.chars().peekable();
        while let Some(&c) = it.peek() {
            if c == ' ' {
                it.next();
            } else if c == '\'' {
                it.next();
                let mut v = String::new();
                loop {
                    match it.next().ok_or("unterminated string")? {
                        '\'' => break,
                        '\\' => {
                            let decoded = match it.next().ok_or("dangling escape")? {
                                'n' => '\n',
                                'r' => '\r',
                                't' => '\t',
                                'b' => '\u{8}',
                                'f' => '\u{c}',
                                e @ ('\'' | '"' | '\\') => e,
                                // Kept escaped, as Salesforce does: they matter to LIKE only.
                                e @ ('%' | '_') => {
                                    v.push('\\');
                                    e
                                }
                                e => return Err(format!("bad escape \\{e}")),
                            };
                            v.push(decoded);
                        }
                        ch => v.push(ch),
                    }
                }
                out.push(Tok::Str(v));
            } else if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                let mut w = String::new();
                while let Some(&d) = it.peek() {
                    if d.is_ascii_alphanumeric() || d == '_' || d == '.' || d == '-' {
                        w.push(d);
                        it.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Word(w));
            } else {
                let mut p = String::from(c);
                it.next();
                if matches!(c, '!' | '<' | '>') && it.peek() == Some(&'=') {
                    p.push('=');
                    it.next();
                }
                out.push(Tok::Punct(p));
            }
        }
        Ok(out)
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.to_owned())
    }
    fn p(s: &str) -> Tok {
        Tok::Punct(s.to_owned())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// No string can leave its literal: the query always lexes to exactly the intended
        /// tokens, and the literal decodes back to the input.
        #[test]
        fn no_input_breaks_out_of_a_literal(value in any::<String>(), other in "[ -~]{0,12}") {
            let q = Select::from("Account")
                .fields(["Id"])
                .filter(Condition::eq("Name", value.as_str()).or(Condition::is_in("Site", [other.as_str(), "x"])))
                .build()
                .unwrap();
            let toks = lex(&q).unwrap();
            let expected = vec![
                w("SELECT"), w("Id"), w("FROM"), w("Account"), w("WHERE"), p("("),
                w("Name"), p("="), Tok::Str(value.clone()), w("OR"),
                w("Site"), w("IN"), p("("), Tok::Str(other.clone()), p(","), Tok::Str("x".into()), p(")"),
                p(")"),
            ];
            prop_assert_eq!(toks, expected);
        }

        #[test]
        fn like_patterns_match_the_value_literally(value in any::<String>()) {
            let q = Select::from("Account").filter(Condition::like_contains("Name", &value)).build().unwrap();
            let toks = lex(&q).unwrap();
            prop_assert_eq!(toks.len(), 8);
            let Tok::Str(pattern) = &toks[7] else { panic!("{q}") };
            // The pattern: %, the value with every \, % and _ escaped by LIKE's backslash, %.
            prop_assert!(pattern.starts_with('%') && pattern.ends_with('%'), "{}", q);
            let inner = &pattern[1..pattern.len() - 1];
            let mut decoded = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => decoded.push(chars.next().expect("escape at the end")),
                    '%' | '_' => panic!("unescaped wildcard in {q}"),
                    c => decoded.push(c),
                }
            }
            prop_assert_eq!(decoded, value);
        }

        #[test]
        fn identifiers_outside_the_rules_are_refused(name in any::<String>()) {
            let ok = Select::from("Account").fields([name.as_str()]).build().is_ok();
            let valid = name.split('.').count() <= MAX_RELATIONSHIP_DEPTH + 1 && name.split('.').all(|p| {
                p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && p.len() <= MAX_API_NAME_LEN
                    && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            prop_assert_eq!(ok, valid);
        }
    }

    #[test]
    fn literals_and_clauses() {
        let q = Select::count("Contact")
            .filter(Condition::eq("Account.Owner.IsActive", true))
            .filter(Condition::ge("CreatedDate", Literal::DateLiteral("LAST_N_DAYS:30".into())))
            .filter(Condition::lt("Birthdate", Literal::Date("2000-01-31".into())))
            .filter(Condition::ne("Email", Literal::Null).negate())
            .filter(Condition::not_in("Id", ["003000000000001"]))
            .filter(Condition::gt("LastModifiedDate", Literal::DateTime("2024-05-01T10:00:00.000+02:00".into())))
            .order_by("LastName", Order::Desc)
            .limit(5)
            .offset(10)
            .build()
            .unwrap();
        assert_eq!(
            q,
            "SELECT COUNT() FROM Contact WHERE (Account.Owner.IsActive = true AND CreatedDate >= LAST_N_DAYS:30 \
             AND Birthdate < 2000-01-31 AND (NOT Email != null) AND Id NOT IN ('003000000000001') AND \
             LastModifiedDate > 2024-05-01T10:00:00.000+02:00) ORDER BY LastName DESC LIMIT 5 OFFSET 10"
        );
        for bad in [
            Select::from("Account; DELETE"),
            Select::from("Account").fields(["Name FROM User --"]),
            Select::from("Account").filter(Condition::eq("Name", Literal::Date("2020-01-01' OR 'x'='x".into()))),
            Select::from("Account").filter(Condition::eq("Name", Literal::DateLiteral("TODAY OR Id != null".into()))),
            Select::from("Account").filter(Condition::eq("Amount", f64::NAN)),
            Select::from("Account").filter(Condition::is_in("Id", Vec::<String>::new())),
            Select::from("Account").filter(Condition::lt("Amount", Literal::Null)),
            Select::from("Account").order_by("Name DESC, (SELECT", Order::Asc),
            Select::from("Account").fields(["A.B.C.D.E.F.G"]),
        ] {
            assert!(bad.build().is_err(), "{bad:?}");
        }
        assert_eq!(quote("it's \\ \"x\"\n"), "'it\\'s \\\\ \\\"x\\\"\\n'");
        assert_eq!(escape_like("50%_off"), "50\\%\\_off");
        assert_eq!(escape_like("a\\b'"), "a\\\\\\\\b\\'");
    }
}
