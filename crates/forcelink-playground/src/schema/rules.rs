//! The seed's validation and duplicate rules (`[[validation_rules]]`, `[[duplicate_rules]]`):
//! their seed shapes and the checked form the record code runs. They live with the schema
//! because they name objects and fields, and a rule on a field that does not exist must stop
//! the playground at start-up, not fail a write later.

use serde::Deserialize;

use super::Schema;

/// A validation rule: when `condition` holds for a record being saved, the save fails with
/// `FIELD_CUSTOM_VALIDATION_EXCEPTION` and `message` (on `field`, when given).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationRuleSeed {
    /// The object the rule guards (`Account`, `Invoice__c`).
    pub object: String,
    /// Rule name (shown in error messages of the seed check only).
    #[serde(default)]
    pub name: String,
    /// A SOQL WHERE condition on the record (`AnnualRevenue < 0`, `Account.Industry = null`);
    /// the record is refused when it holds (Salesforce's "error condition formula").
    pub condition: String,
    /// The error message.
    pub message: String,
    /// The field the error is shown on; a top-of-page error (`fields: []`) when left out.
    #[serde(default)]
    pub field: Option<String>,
    /// `false` turns the rule off.
    #[serde(default = "yes")]
    pub active: bool,
}

/// What a duplicate rule does when a match is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateAction {
    /// Refuse the save (`allowSave: false`).
    #[default]
    Block,
    /// "Allow with alert": API saves are still refused unless the request carries
    /// `Sforce-Duplicate-Rule-Header: allowSave=true` (`allowSave: true`).
    Allow,
}

/// A duplicate rule with an exact matching rule on `fields`: a record whose values for all of
/// them equal another live record's (text case-insensitively; blank values never match)
/// is a duplicate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateRuleSeed {
    /// The object the rule guards.
    pub object: String,
    /// Rule name (`duplicateRule` in the answer).
    pub name: String,
    /// The fields that must all match.
    pub fields: Vec<String>,
    /// `block` (default) or `allow`.
    #[serde(default)]
    pub action: DuplicateAction,
    /// The error message; Salesforce's default text when left out.
    #[serde(default)]
    pub message: Option<String>,
    /// The matching rule's name (`rule` in `matchResults`); `<name>_Match_Rule` when left out.
    #[serde(default)]
    pub matching_rule: Option<String>,
    /// `false` turns the rule off.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Salesforce's default duplicate alert text (the recorded answers and documentation show it).
pub(crate) const DEFAULT_DUPLICATE_MESSAGE: &str = "Use one of these records?";

/// A checked validation rule.
#[derive(Debug, Clone)]
pub(crate) struct ValidationRule {
    pub(crate) object: usize,
    pub(crate) condition: String,
    pub(crate) message: String,
    pub(crate) field: Option<String>,
}

/// A checked duplicate rule.
#[derive(Debug, Clone)]
pub(crate) struct DuplicateRule {
    pub(crate) object: usize,
    pub(crate) name: String,
    /// Field indexes on the object.
    pub(crate) fields: Vec<usize>,
    pub(crate) action: DuplicateAction,
    pub(crate) message: String,
    pub(crate) matching_rule: String,
}

/// The org's active rules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    pub(crate) validation: Vec<ValidationRule>,
    pub(crate) duplicate: Vec<DuplicateRule>,
}

impl Rules {
    /// True when some rule guards `object` (writes to it then run inside a savepoint).
    pub(crate) fn guards(&self, object: usize) -> bool {
        self.validation.iter().any(|r| r.object == object) || self.duplicate.iter().any(|r| r.object == object)
    }
}

impl Schema {
    /// Adds the seed's rules, checking that their objects and fields exist. The conditions are
    /// SOQL and are compiled by the data layer at start-up (`data::rules::check_conditions`).
    pub(crate) fn with_rules(
        mut self,
        validation: &[ValidationRuleSeed],
        duplicate: &[DuplicateRuleSeed],
    ) -> Result<Self, String> {
        let mut rules = Rules::default();
        for r in validation.iter().filter(|r| r.active) {
            let what = if r.name.is_empty() { format!("validation rule on {}", r.object) } else { r.name.clone() };
            let oi = self.index_of(&r.object).ok_or_else(|| format!("{what}: unknown object {:?}", r.object))?;
            let o = &self.objects[oi];
            let field = match &r.field {
                Some(f) => {
                    Some(o.field(f).ok_or_else(|| format!("{what}: {} has no field {f:?}", o.name))?.name.clone())
                }
                None => None,
            };
            if r.message.trim().is_empty() || r.condition.trim().is_empty() {
                return Err(format!("{what}: condition and message must not be empty"));
            }
            rules.validation.push(ValidationRule {
                object: oi,
                condition: r.condition.clone(),
                message: r.message.clone(),
                field,
            });
        }
        for r in duplicate.iter().filter(|r| r.active) {
            let oi = self
                .index_of(&r.object)
                .ok_or_else(|| format!("duplicate rule {}: unknown object {:?}", r.name, r.object))?;
            let o = &self.objects[oi];
            if r.fields.is_empty() {
                return Err(format!("duplicate rule {}: give at least one field to match on", r.name));
            }
            let fields = r
                .fields
                .iter()
                .map(|f| {
                    o.field_index(f).ok_or_else(|| format!("duplicate rule {}: {} has no field {f:?}", r.name, o.name))
                })
                .collect::<Result<Vec<_>, _>>()?;
            rules.duplicate.push(DuplicateRule {
                object: oi,
                name: r.name.clone(),
                fields,
                action: r.action,
                message: r.message.clone().unwrap_or_else(|| DEFAULT_DUPLICATE_MESSAGE.to_owned()),
                matching_rule: r.matching_rule.clone().unwrap_or_else(|| format!("{}_Match_Rule", r.name)),
            });
        }
        self.rules = rules;
        Ok(self)
    }
}
