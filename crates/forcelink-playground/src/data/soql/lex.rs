//! The SOQL/SOSL lexer: identifiers, quoted strings with escapes, numbers, date and dateTime
//! literals, punctuation; each token keeps its text and byte position.

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

pub(super) fn unexpected(t: &Token) -> SyntaxError {
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
