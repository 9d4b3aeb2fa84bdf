//! Record semantics: JSON field values in and out, create / update / delete / upsert with
//! Salesforce's validation errors, system fields, and the side effects of the objects a
//! user-administration workflow touches (User → UserLogin, ContentVersion → ContentDocument and
//! ContentDocumentLink, profile-owned permission set assignments that cannot be deleted).
//!
//! - `values`: JSON ↔ stored values, ids; `checks`: access, references, uniqueness, required
//!   fields, derived values.
//! - One module per operation: `create`, `read`, `update`, `delete`, `undelete`, `upsert`.

mod checks;
mod create;
mod delete;
mod read;
mod undelete;
mod update;
mod upsert;
mod values;

pub(crate) use create::{create, system_insert};
pub(crate) use delete::delete;
pub(crate) use read::{live_row, retrieve};
pub(crate) use undelete::undelete;
pub(crate) use update::{apply_update, update};
pub(crate) use upsert::{Upserted, upsert};
pub(crate) use values::{normalize_id, to_sql};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_normalise_from_15_and_any_case_18() {
        assert_eq!(normalize_id("001D000000K0fXO").as_deref(), Some("001D000000K0fXOIAZ"));
        assert_eq!(normalize_id("001d000000k0fxoiaz").as_deref(), Some("001D000000K0fXOIAZ"));
        assert_eq!(normalize_id("001D000000K0fX"), None);
        assert_eq!(normalize_id("001D000000K0fX'"), None);
    }
}
