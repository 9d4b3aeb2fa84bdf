//! Select-list items that stand for several fields — `FIELDS(STANDARD|CUSTOM|ALL)` and
//! `TYPEOF` — expanded to plain field paths, and Salesforce's limits on them; and the grouping
//! sets of `GROUP BY ROLLUP(…)` / `CUBE(…)`.

use crate::data::request::SfError;
use crate::data::soql::{FieldSet, Grouping, Item, Path, Query};
use crate::schema::Schema;

use super::{malformed, no_relationship};

/// Largest LIMIT that `FIELDS(ALL)` and `FIELDS(CUSTOM)` allow (Salesforce: "You can use
/// FIELDS(ALL) and FIELDS(CUSTOM) … only if … LIMIT n, where n is less than or equal to 200").
pub(super) const FIELDS_MAX_LIMIT: u64 = 200;

/// The fields `FIELDS(set)` selects on `object`, in describe order.
pub(super) fn fields_paths(schema: &Schema, object: usize, set: FieldSet, pos: usize) -> Vec<Path> {
    schema.objects[object]
        .fields
        .iter()
        .filter(|f| match set {
            FieldSet::All => true,
            FieldSet::Custom => f.custom,
            FieldSet::Standard => !f.custom,
        })
        .map(|f| Path { parts: vec![f.name.clone()], pos })
        .collect()
}

/// Checks Salesforce's rules for `FIELDS()`: `ALL` and `CUSTOM` need a LIMIT of at most 200
/// (unbounded sets of fields); none of them goes with aggregates or GROUP BY.
pub(super) fn check_fields(q: &Query) -> Result<(), SfError> {
    for item in &q.select {
        let Item::Fields(set, pos) = item else { continue };
        if *set != FieldSet::Standard && q.limit.is_none_or(|l| l > FIELDS_MAX_LIMIT) {
            return Err(malformed("The SOQL FIELDS function must have a LIMIT of at most 200").at(*pos));
        }
        if !q.group_by.is_empty() || q.select.iter().any(|i| matches!(i, Item::Agg { .. })) {
            // UNCONFIRMED: the wording for FIELDS() with aggregates.
            return Err(malformed("FIELDS() cannot be used with aggregate functions or GROUP BY").at(*pos));
        }
    }
    Ok(())
}

/// The paths a `TYPEOF` selects: the branch for the type the relationship points to (the first
/// of them), else the `ELSE` fields.
pub(super) fn type_of_paths(
    schema: &Schema,
    object: usize,
    rel: &Path,
    whens: &[(String, Vec<Path>)],
    otherwise: &[Path],
) -> Result<Vec<Path>, SfError> {
    let name = rel.parts.last().map(String::as_str).unwrap_or("");
    let field = schema.objects[object].relationship(name).ok_or_else(|| no_relationship(name).at(rel.pos))?;
    let targets = &field.reference_to;
    let branch = whens
        .iter()
        .find(|(ty, _)| targets.iter().any(|t| t.eq_ignore_ascii_case(ty)))
        .map(|(_, fields)| fields.as_slice())
        .unwrap_or(otherwise);
    Ok(branch
        .iter()
        .map(|p| {
            let mut parts = rel.parts.clone();
            parts.extend(p.parts.iter().cloned());
            Path { parts, pos: p.pos }
        })
        .collect())
}

/// The grouping sets of a GROUP BY over `n` keys, as masks of the keys kept (all kept first):
/// plain = just all; ROLLUP(a, b) = (a, b), (a), (); CUBE(a, b) = every subset.
pub(super) fn grouping_sets(grouping: Grouping, n: usize) -> Vec<Vec<bool>> {
    match grouping {
        Grouping::Plain => vec![vec![true; n]],
        Grouping::Rollup => (0..=n).rev().map(|k| (0..n).map(|i| i < k).collect()).collect(),
        Grouping::Cube => {
            let mut sets: Vec<Vec<bool>> =
                (0..1u32 << n).map(|m| (0..n).map(|i| m & (1 << (n - 1 - i)) == 0).collect()).collect();
            sets.sort_by_key(|s| std::cmp::Reverse(s.iter().filter(|b| **b).count()));
            sets
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollup_and_cube_sets() {
        assert_eq!(grouping_sets(Grouping::Rollup, 2), vec![vec![true, true], vec![true, false], vec![false, false]]);
        let cube = grouping_sets(Grouping::Cube, 2);
        assert_eq!(cube.len(), 4);
        assert_eq!(cube[0], vec![true, true]);
        assert_eq!(cube[3], vec![false, false]);
    }
}
