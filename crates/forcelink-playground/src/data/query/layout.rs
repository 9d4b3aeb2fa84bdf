//! Salesforce's layout for SOQL errors that point into the query: the part of the query around
//! the problem, a caret under it, `ERROR at Row:N:Column:M`, then the message:
//!
//! ```text
//! \nSelect Id, Status, Location, Body from ApexLog\n                             ^\nERROR at Row:1:Column:30\nNo such column 'Body' …
//! ```
//!
//! Recorded answers show up to about 45 characters either side of the caret, cut at whole words
//! (without a trailing comma), within the row. UNCONFIRMED: the exact width of that window.

use crate::data::request::SfError;

/// Characters of the query shown before and after the caret (at most).
const WINDOW: usize = 45;

/// Rewrites `e`'s message into the layout when it names a position in `query`. An error at the
/// query's very first token keeps the short form (the recorded `unexpected token: q` answer).
pub(crate) fn with_layout(query: &str, mut e: SfError) -> SfError {
    let Some(pos) = e.pos.filter(|p| *p > 0 && *p <= query.len() && query.is_char_boundary(*p)) else { return e };
    if query[..pos].trim().is_empty() {
        return e;
    }
    let line_start = query[..pos].rfind('\n').map_or(0, |i| i + 1);
    let line_end = query[pos..].find('\n').map_or(query.len(), |i| pos + i);
    let row = query[..pos].matches('\n').count() + 1;
    let column = query[line_start..pos].chars().count() + 1;
    let line = &query[line_start..line_end];
    let at = pos - line_start;
    // Window start: a word boundary at most WINDOW characters before the caret.
    let mut start = 0;
    let before: Vec<(usize, char)> = line[..at].char_indices().collect();
    if before.len() > WINDOW {
        let cut = before[before.len() - WINDOW].0;
        let prev_is_space = line[..cut].chars().next_back().is_none_or(char::is_whitespace);
        start = if prev_is_space { cut } else { line[cut..at].find(char::is_whitespace).map_or(at, |i| cut + i + 1) };
    }
    // Window end: a word boundary at most WINDOW characters after the caret.
    let after = &line[at..];
    let mut end = line.len();
    if let Some((cut, _)) = after.char_indices().nth(WINDOW) {
        let next_is_space = after[cut..].starts_with(char::is_whitespace);
        end = at + if next_is_space { cut } else { after[..cut].rfind(char::is_whitespace).unwrap_or(cut) };
    }
    let shown = line[start..end].trim_end_matches(|c: char| c.is_whitespace() || c == ',');
    let caret = " ".repeat(line[start..at].chars().count());
    e.message = format!("\n{shown}\n{caret}^\nERROR at Row:{row}:Column:{column}\n{}", e.message);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn laid(q: &str, pos: usize) -> String {
        with_layout(q, SfError::bad("INVALID_FIELD", "msg").at(pos)).message
    }

    #[test]
    fn short_queries_are_shown_whole() {
        let q = "Select Id, Status, Location, Body from ApexLog";
        assert_eq!(
            laid(q, 29),
            "\nSelect Id, Status, Location, Body from ApexLog\n                             ^\nERROR at Row:1:Column:30\nmsg"
        );
    }

    #[test]
    fn long_rows_show_a_window_of_whole_words() {
        let q = "SELECT Id, Name, CreatedDate, LastModifiedDate, LastViewedDate, LastReferencedDate, Jigsaw, \
                 JigsawCompanyId, CleanStatus, AccountSource, DunsNumber, Tradestyle, NaicsCode FROM Account";
        let pos = q.find("CleanStatus").unwrap();
        let m = laid(q, pos);
        let lines: Vec<&str> = m.lines().collect();
        // As recorded from a real org (a Camel issue): the same window, without the trailing comma.
        assert_eq!(lines[1], "LastReferencedDate, Jigsaw, JigsawCompanyId, CleanStatus, AccountSource, DunsNumber");
        assert_eq!(lines[2].len(), "LastReferencedDate, Jigsaw, JigsawCompanyId, ".len() + 1);
        assert_eq!(lines[3], format!("ERROR at Row:1:Column:{}", pos + 1));
    }

    #[test]
    fn rows_count_lines_and_first_token_errors_stay_short() {
        let q = "SELECT Id\nFROM Acount";
        assert_eq!(laid(q, 15), "\nFROM Acount\n     ^\nERROR at Row:2:Column:6\nmsg");
        assert_eq!(laid("q=SELECT Id FROM Account", 0), "msg");
        assert_eq!(with_layout("x", SfError::bad("MALFORMED_QUERY", "m")).message, "m");
    }
}
