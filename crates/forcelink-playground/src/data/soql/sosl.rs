//! The SOSL subset `search` understands.

use super::lex::{Tok, lex, unexpected};
use super::{Cond, Grammar, Order, Path, SyntaxError};

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
    let mut p = Grammar::new(lex(&s[offset..])?);
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
                        r.order.push(Order { path, agg: None, desc, nulls_last: None });
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
