//! The org's metadata: which sObjects exist, their fields, types, relationships and key
//! prefixes. Standard objects are declared below in a compact text form (one field per line);
//! custom objects and fields (`__c`) come from the seed file.
//!
//! Field lines read `Name type [len|p,s] flags…`; flags: `req` (required on create), `ro`
//! (read only), `co` (create only), `ext` (external id), `uniq`, `name` (name field),
//! `calc` (calculated, read only), `def=V` (default on create), `->A|B` (reference to),
//! `rel=R` (relationship name), `child=C` (child relationship name on the target), and
//! `pick=a;b;c` which takes the rest of the line. Shapes follow Salesforce's describe
//! (wire reference §6.2); values are realistic, not exhaustive.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::seed::{CustomFieldSeed, CustomObjectSeed};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    Id,
    String,
    TextArea,
    Picklist,
    MultiPicklist,
    Email,
    Phone,
    Url,
    Boolean,
    Int,
    Double,
    Currency,
    Percent,
    Date,
    DateTime,
    Reference,
    Base64,
}

/// How a value is kept in SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    Text,
    Integer,
    Real,
    Blob,
}

impl FieldType {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "id" => Self::Id,
            "string" | "text" => Self::String,
            "textarea" => Self::TextArea,
            "picklist" => Self::Picklist,
            "multipicklist" => Self::MultiPicklist,
            "email" => Self::Email,
            "phone" => Self::Phone,
            "url" => Self::Url,
            "boolean" | "checkbox" => Self::Boolean,
            "int" | "integer" => Self::Int,
            "double" | "number" => Self::Double,
            "currency" => Self::Currency,
            "percent" => Self::Percent,
            "date" => Self::Date,
            "datetime" => Self::DateTime,
            "reference" | "lookup" => Self::Reference,
            "base64" => Self::Base64,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::String => "string",
            Self::TextArea => "textarea",
            Self::Picklist => "picklist",
            Self::MultiPicklist => "multipicklist",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Url => "url",
            Self::Boolean => "boolean",
            Self::Int => "int",
            Self::Double => "double",
            Self::Currency => "currency",
            Self::Percent => "percent",
            Self::Date => "date",
            Self::DateTime => "datetime",
            Self::Reference => "reference",
            Self::Base64 => "base64",
        }
    }

    fn soap_type(self) -> &'static str {
        match self {
            Self::Id | Self::Reference => "tns:ID",
            Self::Boolean => "xsd:boolean",
            Self::Int => "xsd:int",
            Self::Double | Self::Currency | Self::Percent => "xsd:double",
            Self::Date => "xsd:date",
            Self::DateTime => "xsd:dateTime",
            Self::Base64 => "xsd:base64Binary",
            _ => "xsd:string",
        }
    }

    pub(crate) fn storage(self) -> Storage {
        match self {
            Self::Boolean | Self::Int => Storage::Integer,
            Self::Double | Self::Currency | Self::Percent => Storage::Real,
            Self::Base64 => Storage::Blob,
            _ => Storage::Text,
        }
    }

    pub(crate) fn is_textual(self) -> bool {
        self.storage() == Storage::Text
    }

    fn default_length(self) -> u32 {
        match self {
            Self::Id | Self::Reference => 18,
            Self::String | Self::Picklist | Self::Url => 255,
            Self::TextArea => 32000,
            Self::MultiPicklist => 4099,
            Self::Email => 80,
            Self::Phone => 40,
            Self::Base64 => 52_428_800,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) ftype: FieldType,
    pub(crate) length: u32,
    pub(crate) precision: u32,
    pub(crate) scale: u32,
    pub(crate) nillable: bool,
    pub(crate) createable: bool,
    pub(crate) updateable: bool,
    pub(crate) required: bool,
    pub(crate) external_id: bool,
    pub(crate) unique: bool,
    pub(crate) name_field: bool,
    pub(crate) calculated: bool,
    pub(crate) custom: bool,
    pub(crate) default_value: Option<String>,
    pub(crate) reference_to: Vec<String>,
    pub(crate) relationship_name: Option<String>,
    pub(crate) child_relationship: Option<String>,
    pub(crate) picklist: Vec<String>,
}

impl Field {
    fn new(name: &str, ftype: FieldType) -> Self {
        Self {
            name: name.to_owned(),
            label: label_of(name),
            ftype,
            length: ftype.default_length(),
            precision: if matches!(ftype, FieldType::Currency | FieldType::Double | FieldType::Percent) {
                18
            } else {
                0
            },
            scale: if ftype == FieldType::Currency { 2 } else { 0 },
            nillable: true,
            createable: true,
            updateable: true,
            required: false,
            external_id: false,
            unique: false,
            name_field: false,
            calculated: false,
            custom: name.ends_with("__c"),
            default_value: None,
            reference_to: Vec::new(),
            relationship_name: None,
            child_relationship: None,
            picklist: Vec::new(),
        }
    }

    /// Fields addressed by value lookups: Id, external ids, and idLookup fields such as
    /// `Username`.
    pub(crate) fn id_lookup(&self) -> bool {
        self.ftype == FieldType::Id || self.external_id || self.name == "Username" || self.name == "Email"
    }

    pub(crate) fn describe(&self) -> Value {
        let defaulted = self.default_value.is_some() || self.ftype == FieldType::Id || self.ftype == FieldType::Boolean;
        let byte_length = if self.ftype.is_textual() { self.length * 3 } else { 0 };
        let byte_length = if matches!(self.ftype, FieldType::Id | FieldType::Reference) { 18 } else { byte_length };
        json!({
            "aggregatable": self.ftype != FieldType::TextArea,
            "autoNumber": false,
            "byteLength": byte_length,
            "calculated": self.calculated,
            "calculatedFormula": null,
            "caseSensitive": false,
            "controllerName": null,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": match (&self.default_value, self.ftype) {
                (Some(v), FieldType::Boolean) => json!(v == "true"),
                (Some(v), _) => json!(v),
                (None, FieldType::Boolean) => json!(false),
                (None, _) => Value::Null,
            },
            "defaultValueFormula": null,
            "defaultedOnCreate": defaulted,
            "dependentPicklist": false,
            "deprecatedAndHidden": false,
            "digits": if self.ftype == FieldType::Int { 9 } else { 0 },
            "externalId": self.external_id,
            "filterable": !matches!(self.ftype, FieldType::TextArea | FieldType::Base64),
            "groupable": !matches!(self.ftype, FieldType::TextArea | FieldType::Base64 | FieldType::Double | FieldType::Currency | FieldType::Percent | FieldType::DateTime),
            "htmlFormatted": false,
            "idLookup": self.id_lookup(),
            "inlineHelpText": null,
            "label": self.label,
            "length": if self.ftype.is_textual() { self.length } else { 0 },
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": self.reference_to.len() > 1,
            "nillable": self.nillable,
            "picklistValues": self.picklist.iter().map(|v| json!({
                "active": true,
                "defaultValue": self.default_value.as_deref() == Some(v.as_str()),
                "label": v,
                "validFor": null,
                "value": v,
            })).collect::<Vec<_>>(),
            "precision": self.precision,
            "referenceTo": self.reference_to,
            "relationshipName": self.relationship_name,
            "relationshipOrder": null,
            "restrictedPicklist": false,
            "scale": self.scale,
            "soapType": self.ftype.soap_type(),
            "sortable": !matches!(self.ftype, FieldType::TextArea | FieldType::Base64 | FieldType::MultiPicklist),
            "type": self.ftype.name(),
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": false,
        })
    }
}

/// "BillingCity" → "Billing City"; "Amount__c" → "Amount".
fn label_of(name: &str) -> String {
    // Salesforce labels reference fields "Account ID".
    if let Some(base) = name.strip_suffix("Id").filter(|b| !b.is_empty() && !name.ends_with("__c")) {
        return format!("{} ID", label_of(base));
    }
    let base = name.trim_end_matches("__c");
    let base = if base.is_empty() { name } else { base };
    let mut out = String::new();
    let mut prev_lower = false;
    for c in base.chars() {
        if c == '_' {
            out.push(' ');
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(c);
    }
    out
}

#[derive(Debug, Clone)]
pub(crate) struct ChildRelationship {
    pub(crate) name: String,
    pub(crate) child: usize,
    pub(crate) field: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct SObject {
    pub(crate) name: String,
    pub(crate) label: String,
    pub(crate) label_plural: String,
    pub(crate) key_prefix: String,
    pub(crate) custom: bool,
    pub(crate) createable: bool,
    pub(crate) updateable: bool,
    pub(crate) deletable: bool,
    pub(crate) fields: Vec<Field>,
    by_lower: HashMap<String, usize>,
    pub(crate) children: Vec<ChildRelationship>,
}

impl SObject {
    pub(crate) fn field(&self, name: &str) -> Option<&Field> {
        self.field_index(name).map(|i| &self.fields[i])
    }
    pub(crate) fn field_index(&self, name: &str) -> Option<usize> {
        self.by_lower.get(&name.to_ascii_lowercase()).copied()
    }
    /// The reference field whose relationship name is `rel` (case-insensitive).
    pub(crate) fn relationship(&self, rel: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(rel)))
    }
    pub(crate) fn child(&self, rel: &str) -> Option<&ChildRelationship> {
        self.children.iter().find(|c| c.name.eq_ignore_ascii_case(rel))
    }
    pub(crate) fn name_field(&self) -> Option<&Field> {
        self.fields.iter().find(|f| f.name_field)
    }
    pub(crate) fn has_owner(&self) -> bool {
        self.field_index("OwnerId").is_some()
    }
    pub(crate) fn table(&self) -> String {
        format!("\"o_{}\"", self.name)
    }

    fn urls(&self, v: &str) -> Value {
        let base = format!("/services/data/v{v}/sobjects/{}", self.name);
        json!({"sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}")})
    }

    /// One entry of describeGlobal (also `objectDescribe` of `GET /sobjects/{T}`).
    pub(crate) fn global_entry(&self, v: &str) -> Value {
        json!({
            "activateable": false,
            "createable": self.createable,
            "custom": self.custom,
            "customSetting": false,
            "deletable": self.deletable,
            "deprecatedAndHidden": false,
            "feedEnabled": !self.custom && self.has_owner(),
            "hasSubtypes": false,
            "isSubtype": false,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": true,
            "mergeable": matches!(self.name.as_str(), "Account" | "Contact" | "Lead" | "Case"),
            "mruEnabled": true,
            "name": self.name,
            "queryable": true,
            "replicateable": true,
            "retrieveable": true,
            "searchable": self.name_field().is_some(),
            "triggerable": true,
            "undeletable": self.deletable,
            "updateable": self.updateable,
            "urls": self.urls(v),
        })
    }

    /// The full describe; `instance` is the org's instance URL (the Classic UI templates are
    /// absolute URLs on it, as Salesforce answers them).
    pub(crate) fn describe(&self, schema: &Schema, v: &str, instance: &str) -> Value {
        let mut d = self.global_entry(v);
        let mut urls = self.urls(v);
        if let Some(u) = urls.as_object_mut() {
            u.insert("uiDetailTemplate".into(), json!(format!("{instance}/{{ID}}")));
            u.insert("uiEditTemplate".into(), json!(format!("{instance}/{{ID}}/e")));
            u.insert("uiNewRecord".into(), json!(format!("{instance}/{}/e", self.key_prefix)));
        }
        if let Some(o) = d.as_object_mut() {
            o.insert("urls".into(), urls);
            o.insert("fields".into(), Value::Array(self.fields.iter().map(Field::describe).collect()));
            o.insert(
                "childRelationships".into(),
                Value::Array(
                    self.children
                        .iter()
                        .map(|c| {
                            let child = &schema.objects[c.child];
                            json!({
                                "cascadeDelete": false,
                                "childSObject": child.name,
                                "deprecatedAndHidden": false,
                                "field": child.fields[c.field].name,
                                "junctionIdListNames": [],
                                "junctionReferenceTo": [],
                                "relationshipName": c.name,
                                "restrictedDelete": false,
                            })
                        })
                        .collect(),
                ),
            );
            o.insert(
                "recordTypeInfos".into(),
                json!([{"active": true, "available": true, "defaultRecordTypeMapping": true, "developerName": "Master",
                        "master": true, "name": "Master", "recordTypeId": "012000000000000AAA",
                        "urls": {"layout": format!("/services/data/v{v}/sobjects/{}/describe/layouts/012000000000000AAA", self.name)}}]),
            );
            o.insert("compactLayoutable".into(), json!(true));
            o.insert("searchLayoutable".into(), json!(true));
            o.insert("listviewable".into(), Value::Null);
            o.insert("lookupLayoutable".into(), Value::Null);
            o.insert("networkScopeFieldName".into(), Value::Null);
            o.insert("supportedScopes".into(), json!([{"label": "All", "name": "everything"}]));
        }
        d
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pub(crate) objects: Vec<SObject>,
    by_lower: HashMap<String, usize>,
    by_prefix: HashMap<String, usize>,
}

/// Object-level permissions of a standard object.
#[derive(Clone, Copy)]
enum Access {
    /// create, update, delete
    Full,
    /// read only through the API
    ReadOnly,
    /// create, update; no delete (User)
    NoDelete,
    /// create and delete, no update (assignments)
    CreateDelete,
    /// update only (UserLogin)
    UpdateOnly,
    /// update and delete (ContentDocument)
    UpdateDelete,
}

struct Standard {
    name: &'static str,
    label: &'static str,
    plural: &'static str,
    prefix: &'static str,
    access: Access,
    owned: bool,
    fields: &'static str,
}

const PICK_INDUSTRY: &str = "Agriculture;Apparel;Banking;Biotechnology;Chemicals;Communications;Construction;Consulting;Education;Electronics;Energy;Engineering;Entertainment;Environmental;Finance;Food & Beverage;Government;Healthcare;Hospitality;Insurance;Machinery;Manufacturing;Media;Not For Profit;Recreation;Retail;Shipping;Technology;Telecommunications;Transportation;Utilities;Other";

const STANDARD: &[Standard] = &[
    Standard {
        name: "Account",
        label: "Account",
        plural: "Accounts",
        prefix: "001",
        access: Access::Full,
        owned: true,
        fields: "Name string 255 req name
ParentId reference ->Account rel=Parent child=ChildAccounts
AccountNumber string 40
Site string 80
Type picklist pick=Prospect;Customer - Direct;Customer - Channel;Channel Partner / Reseller;Installation Partner;Technology Partner;Other
Industry picklist pick=@INDUSTRY
AnnualRevenue currency 18,0
NumberOfEmployees int
Ownership picklist pick=Public;Private;Subsidiary;Other
Rating picklist pick=Hot;Warm;Cold
Phone phone
Fax phone
Website url
Sic string 20
TickerSymbol string 20
BillingStreet textarea 255
BillingCity string 40
BillingState string 80
BillingPostalCode string 20
BillingCountry string 80
ShippingStreet textarea 255
ShippingCity string 40
ShippingState string 80
ShippingPostalCode string 20
ShippingCountry string 80
AccountSource picklist pick=Web;Phone Inquiry;Partner Referral;Purchased List;Other
Description textarea
LastActivityDate date ro",
    },
    Standard {
        name: "Contact",
        label: "Contact",
        plural: "Contacts",
        prefix: "003",
        access: Access::Full,
        owned: true,
        fields: "AccountId reference ->Account rel=Account child=Contacts
LastName string 80 req
FirstName string 40
Salutation picklist pick=Mr.;Ms.;Mrs.;Dr.;Prof.
Name string 121 calc name
Title string 128
Department string 80
Email email
Phone phone
MobilePhone phone
HomePhone phone
Birthdate date
ReportsToId reference ->Contact rel=ReportsTo
LeadSource picklist pick=Web;Phone Inquiry;Partner Referral;Purchased List;Other
MailingStreet textarea 255
MailingCity string 40
MailingState string 80
MailingPostalCode string 20
MailingCountry string 80
HasOptedOutOfEmail boolean
DoNotCall boolean
Description textarea
LastActivityDate date ro",
    },
    Standard {
        name: "Lead",
        label: "Lead",
        plural: "Leads",
        prefix: "00Q",
        access: Access::Full,
        owned: true,
        fields: "LastName string 80 req
FirstName string 40
Salutation picklist pick=Mr.;Ms.;Mrs.;Dr.;Prof.
Name string 121 calc name
Title string 128
Company string 255 req
Email email
Phone phone
MobilePhone phone
Website url
Street textarea 255
City string 40
State string 80
PostalCode string 20
Country string 80
Status picklist def=Open - Not Contacted pick=Open - Not Contacted;Working - Contacted;Closed - Converted;Closed - Not Converted
LeadSource picklist pick=Web;Phone Inquiry;Partner Referral;Purchased List;Other
Industry picklist pick=@INDUSTRY
Rating picklist pick=Hot;Warm;Cold
AnnualRevenue currency 18,0
NumberOfEmployees int
IsConverted boolean
ConvertedDate date ro
ConvertedAccountId reference ->Account rel=ConvertedAccount ro
ConvertedContactId reference ->Contact rel=ConvertedContact ro
ConvertedOpportunityId reference ->Opportunity rel=ConvertedOpportunity ro
IsUnreadByOwner boolean
Description textarea",
    },
    Standard {
        name: "Opportunity",
        label: "Opportunity",
        plural: "Opportunities",
        prefix: "006",
        access: Access::Full,
        owned: true,
        fields: "Name string 120 req name
AccountId reference ->Account rel=Account child=Opportunities
Amount currency 18,2
CloseDate date req
StageName picklist req pick=Prospecting;Qualification;Needs Analysis;Value Proposition;Id. Decision Makers;Perception Analysis;Proposal/Price Quote;Negotiation/Review;Closed Won;Closed Lost
Probability percent 3,0
ExpectedRevenue currency 18,2 calc
Type picklist pick=Existing Customer - Upgrade;Existing Customer - Replacement;Existing Customer - Downgrade;New Customer
NextStep string 255
LeadSource picklist pick=Web;Phone Inquiry;Partner Referral;Purchased List;Other
IsClosed boolean calc
IsWon boolean calc
ForecastCategoryName picklist pick=Omitted;Pipeline;Best Case;Commit;Closed
Description textarea",
    },
    Standard {
        name: "Case",
        label: "Case",
        plural: "Cases",
        prefix: "500",
        access: Access::Full,
        owned: true,
        fields: "CaseNumber string 30 ro name
AccountId reference ->Account rel=Account child=Cases
ContactId reference ->Contact rel=Contact child=Cases
ParentId reference ->Case rel=Parent child=Cases
SuppliedName string 80
SuppliedEmail email
SuppliedPhone string 40
Subject string 255
Description textarea
Status picklist def=New pick=New;Working;Escalated;Closed
Priority picklist def=Medium pick=High;Medium;Low
Origin picklist pick=Phone;Email;Web
Type picklist pick=Mechanical;Electrical;Electronic;Structural;Other
Reason picklist pick=Installation;Equipment Complexity;Performance;Breakdown;Equipment Design;Feedback;Other
IsClosed boolean calc
IsEscalated boolean
ClosedDate datetime ro",
    },
    Standard {
        name: "User",
        label: "User",
        plural: "Users",
        prefix: "005",
        access: Access::NoDelete,
        owned: false,
        fields: "Username string 80 req uniq
LastName string 80 req
FirstName string 40
Name string 121 calc name
CompanyName string 80
Division string 80
Department string 80
Title string 80
Street textarea 255
City string 40
State string 80
PostalCode string 20
Country string 80
Email email 128 req
Phone phone
MobilePhone phone
Alias string 8 req
CommunityNickname string 40
IsActive boolean def=true
TimeZoneSidKey picklist req pick=America/Los_Angeles;America/Denver;America/Chicago;America/New_York;Europe/London;Europe/Paris;Europe/Berlin;Asia/Tokyo;Australia/Sydney;GMT
LocaleSidKey picklist req pick=en_US;en_GB;de_DE;fr_FR;ja_JP
EmailEncodingKey picklist req pick=UTF-8;ISO-8859-1;Shift_JIS
LanguageLocaleKey picklist req pick=en_US;de;fr;ja
ProfileId reference ->Profile rel=Profile req child=Users
ManagerId reference ->User rel=Manager
FederationIdentifier string 512
EmployeeNumber string 20
UserType picklist ro def=Standard pick=Standard;PowerPartner;CsnOnly;Guest
LastLoginDate datetime ro
LastPasswordChangeDate datetime ro",
    },
    Standard {
        name: "UserLogin",
        label: "User Login",
        plural: "User Logins",
        prefix: "060",
        access: Access::UpdateOnly,
        owned: false,
        fields: "UserId reference ->User rel=User ro child=UserLogins
IsFrozen boolean
IsPasswordLocked boolean",
    },
    Standard {
        name: "Profile",
        label: "Profile",
        plural: "Profiles",
        prefix: "00e",
        access: Access::ReadOnly,
        owned: false,
        fields: "Name string 255 req name
UserType picklist pick=Standard;PowerPartner;CsnOnly;Guest
Description string 255",
    },
    Standard {
        name: "PermissionSet",
        label: "Permission Set",
        plural: "Permission Sets",
        prefix: "0PS",
        access: Access::Full,
        owned: false,
        fields: "Name string 80 req
Label string 80 req name
Description string 255
IsOwnedByProfile boolean ro
ProfileId reference ->Profile rel=Profile ro
IsCustom boolean ro
Type picklist ro pick=Regular;Profile;Group;Session
PermissionsApiEnabled boolean
PermissionsModifyAllData boolean
PermissionsViewAllData boolean
PermissionsManageUsers boolean",
    },
    Standard {
        name: "PermissionSetAssignment",
        label: "Permission Set Assignment",
        plural: "Permission Set Assignments",
        prefix: "0Pa",
        access: Access::CreateDelete,
        owned: false,
        fields: "AssigneeId reference ->User rel=Assignee req co child=PermissionSetAssignments
PermissionSetId reference ->PermissionSet rel=PermissionSet req co child=Assignments
PermissionSetGroupId string 18 co
ExpirationDate datetime
IsActive boolean ro def=true",
    },
    Standard {
        name: "PermissionSetLicense",
        label: "Permission Set License",
        plural: "Permission Set Licenses",
        prefix: "0PL",
        access: Access::ReadOnly,
        owned: false,
        fields: "MasterLabel string 80 name
DeveloperName string 80
Status picklist pick=Active;Disabled
TotalLicenses int
UsedLicenses int
ExpirationDate date
LicenseExpirationPolicy picklist pick=BlockUsage",
    },
    Standard {
        name: "PermissionSetLicenseAssign",
        label: "Permission Set License Assignment",
        plural: "Permission Set License Assignments",
        prefix: "2LA",
        access: Access::CreateDelete,
        owned: false,
        fields: "AssigneeId reference ->User rel=Assignee req co child=PermissionSetLicenseAssignments
PermissionSetLicenseId reference ->PermissionSetLicense rel=PermissionSetLicense req co child=PermissionSetLicenseAssignments",
    },
    Standard {
        name: "PackageLicense",
        label: "Package License",
        plural: "Package Licenses",
        prefix: "050",
        access: Access::ReadOnly,
        owned: false,
        fields: "NamespacePrefix string 15 name
AllowedLicenses int
UsedLicenses int
Status picklist pick=Active;Expired;Free;Trial
ExpirationDate datetime
IsProvisioned boolean",
    },
    Standard {
        name: "UserPackageLicense",
        label: "User Package License",
        plural: "User Package Licenses",
        prefix: "051",
        access: Access::CreateDelete,
        owned: false,
        fields: "UserId reference ->User rel=User req co child=UserPackageLicenses
PackageLicenseId reference ->PackageLicense rel=PackageLicense req co child=UserPackageLicenses",
    },
    Standard {
        name: "ContentDocument",
        label: "Content Document",
        plural: "Content Documents",
        prefix: "069",
        access: Access::UpdateDelete,
        owned: true,
        fields: "Title string 255 name
Description textarea 255
LatestPublishedVersionId reference ->ContentVersion rel=LatestPublishedVersion ro
ContentSize int ro
FileType string 20 ro
FileExtension string 40 ro
PublishStatus picklist ro def=P pick=U;P;R
ArchivedDate date ro
IsArchived boolean ro",
    },
    Standard {
        name: "ContentVersion",
        label: "Content Version",
        plural: "Content Versions",
        prefix: "068",
        access: Access::Full,
        owned: true,
        fields: "ContentDocumentId reference ->ContentDocument rel=ContentDocument co child=ContentVersions
Title string 255 req name
Description textarea 1000
PathOnClient string 500 co
VersionData base64 co
FirstPublishLocationId reference ->Account|Contact|Lead|Opportunity|Case|User rel=FirstPublishLocation co
ContentSize int ro
FileType string 20 ro
FileExtension string 40 ro
VersionNumber string 20 ro
IsLatest boolean ro
ReasonForChange string 1000
Origin picklist co def=C pick=C;H
ContentLocation picklist co def=S pick=S;E;L
SharingOption picklist def=A pick=A;R",
    },
    Standard {
        name: "ContentDocumentLink",
        label: "Content Document Link",
        plural: "Content Document Links",
        prefix: "06A",
        access: Access::Full,
        owned: false,
        fields: "ContentDocumentId reference ->ContentDocument rel=ContentDocument req co child=ContentDocumentLinks
LinkedEntityId reference ->Account|Contact|Lead|Opportunity|Case|User rel=LinkedEntity req co
ShareType picklist def=V pick=V;C;I
Visibility picklist def=AllUsers pick=AllUsers;InternalUsers;SharedUsers",
    },
    Standard {
        name: "Organization",
        label: "Organization",
        plural: "Organizations",
        prefix: "00D",
        access: Access::ReadOnly,
        owned: false,
        fields: "Name string 80 ro name
Division string 80 ro
Street textarea 255 ro
City string 40 ro
State string 80 ro
PostalCode string 20 ro
Country string 80 ro
Phone phone ro
PrimaryContact string 80 ro
DefaultLocaleSidKey picklist ro pick=en_US
LanguageLocaleKey picklist ro pick=en_US
TimeZoneSidKey picklist ro pick=America/Los_Angeles
OrganizationType picklist ro pick=Developer Edition;Enterprise Edition;Unlimited Edition
InstanceName string 5 ro
IsSandbox boolean ro
TrialExpirationDate datetime ro
NamespacePrefix string 15 ro",
    },
];

/// Builds a field from one line of the compact form. Returns an error naming the line.
fn parse_field_line(line: &str) -> Result<Field, String> {
    let (head, pick) = match line.split_once(" pick=") {
        Some((h, p)) => (h, Some(if p == "@INDUSTRY" { PICK_INDUSTRY } else { p })),
        None => (line, None),
    };
    // `def=` comes last (before `pick=`) and may contain spaces ("Open - Not Contacted").
    let (head, default) = match head.split_once(" def=") {
        Some((h, d)) => (h, Some(d.trim().to_owned())),
        None => (head, None),
    };
    let mut words = head.split_whitespace();
    let name = words.next().ok_or("empty field line")?;
    let ftype_s = words.next().ok_or_else(|| format!("{name}: no type"))?;
    let ftype = FieldType::parse(ftype_s).ok_or_else(|| format!("{name}: unknown type {ftype_s}"))?;
    let mut f = Field::new(name, ftype);
    for w in words {
        if let Some((p, s)) = w.split_once(',')
            && let (Ok(p), Ok(s)) = (p.parse(), s.parse())
        {
            f.precision = p;
            f.scale = s;
        } else if let Ok(n) = w.parse::<u32>() {
            f.length = n;
        } else if let Some(t) = w.strip_prefix("->") {
            f.reference_to = t.split('|').map(str::to_owned).collect();
        } else if let Some(r) = w.strip_prefix("rel=") {
            f.relationship_name = Some(r.to_owned());
        } else if let Some(c) = w.strip_prefix("child=") {
            f.child_relationship = Some(c.to_owned());
        } else {
            match w {
                "req" => f.required = true,
                "ro" => (f.createable, f.updateable) = (false, false),
                "co" => f.updateable = false,
                "ext" => f.external_id = true,
                "uniq" => f.unique = true,
                "name" => f.name_field = true,
                "calc" => (f.calculated, f.createable, f.updateable) = (true, false, false),
                other => return Err(format!("{name}: unknown flag {other}")),
            }
        }
    }
    f.default_value = default;
    if f.required {
        f.nillable = false;
    }
    if ftype == FieldType::Boolean {
        f.nillable = false;
    }
    if let Some(p) = pick {
        f.picklist = p.split(';').map(str::to_owned).collect();
    }
    Ok(f)
}

fn system_fields(owned: bool) -> Vec<Field> {
    let mut out = Vec::new();
    let mut id = Field::new("Id", FieldType::Id);
    id.label = "Record ID".into();
    (id.nillable, id.createable, id.updateable) = (false, false, false);
    out.push(id);
    let mut deleted = Field::new("IsDeleted", FieldType::Boolean);
    (deleted.createable, deleted.updateable, deleted.nillable) = (false, false, false);
    out.push(deleted);
    if owned {
        let mut owner = Field::new("OwnerId", FieldType::Reference);
        owner.label = "Owner ID".into();
        owner.reference_to = vec!["User".into()];
        owner.relationship_name = Some("Owner".into());
        owner.nillable = false;
        owner.default_value = None;
        out.push(owner);
    }
    for (name, ftype, reference) in [
        ("CreatedDate", FieldType::DateTime, false),
        ("CreatedById", FieldType::Reference, true),
        ("LastModifiedDate", FieldType::DateTime, false),
        ("LastModifiedById", FieldType::Reference, true),
        ("SystemModstamp", FieldType::DateTime, false),
    ] {
        let mut f = Field::new(name, ftype);
        (f.createable, f.updateable, f.nillable) = (false, false, false);
        if reference {
            f.reference_to = vec!["User".into()];
            f.relationship_name = Some(name.trim_end_matches("Id").to_owned());
        }
        out.push(f);
    }
    out
}

fn custom_field(f: &CustomFieldSeed) -> Result<Field, String> {
    if !f.name.ends_with("__c") {
        return Err(format!("custom field {:?} must end with __c", f.name));
    }
    let ftype =
        FieldType::parse(&f.r#type).ok_or_else(|| format!("custom field {}: unknown type {:?}", f.name, f.r#type))?;
    let mut field = Field::new(&f.name, ftype);
    if let Some(l) = &f.label {
        field.label = l.clone();
    }
    if let Some(n) = f.length {
        field.length = n;
    }
    if let Some(p) = f.precision {
        field.precision = p;
    }
    if let Some(s) = f.scale {
        field.scale = s;
    }
    field.required = f.required;
    field.nillable = !f.required && ftype != FieldType::Boolean;
    field.external_id = f.external_id;
    field.unique = f.unique;
    field.default_value = f.default.clone();
    field.picklist = f.picklist_values.clone();
    if ftype == FieldType::Reference {
        let target =
            f.reference_to.clone().ok_or_else(|| format!("custom field {}: reference_to is required", f.name))?;
        field.reference_to = vec![target];
        field.relationship_name = Some(f.name.trim_end_matches("__c").to_owned() + "__r");
        field.child_relationship = f.child_relationship.clone();
    }
    Ok(field)
}

impl Schema {
    /// The standard objects plus the seed's custom objects and fields.
    pub(crate) fn build(objects: &[CustomObjectSeed], fields: &[CustomFieldSeed]) -> Result<Self, String> {
        let mut list = Vec::new();
        for s in STANDARD {
            let mut all = system_fields(s.owned);
            for line in s.fields.lines().map(str::trim).filter(|l| !l.is_empty()) {
                all.push(parse_field_line(line).map_err(|e| format!("{}: {e}", s.name))?);
            }
            let (createable, updateable, deletable) = match s.access {
                Access::Full => (true, true, true),
                Access::ReadOnly => (false, false, false),
                Access::NoDelete => (true, true, false),
                Access::CreateDelete => (true, false, true),
                Access::UpdateOnly => (false, true, false),
                Access::UpdateDelete => (false, true, true),
            };
            list.push(SObject {
                name: s.name.into(),
                label: s.label.into(),
                label_plural: s.plural.into(),
                key_prefix: s.prefix.into(),
                custom: false,
                createable,
                updateable,
                deletable,
                fields: all,
                by_lower: HashMap::new(),
                children: Vec::new(),
            });
        }
        for (i, o) in objects.iter().enumerate() {
            if !o.name.ends_with("__c") {
                return Err(format!("custom object {:?} must end with __c", o.name));
            }
            let mut all = system_fields(true);
            let mut name = Field::new("Name", FieldType::String);
            name.length = 80;
            name.name_field = true;
            all.push(name);
            for f in &o.fields {
                all.push(custom_field(f)?);
            }
            let label = o.label.clone().unwrap_or_else(|| label_of(&o.name));
            list.push(SObject {
                name: o.name.clone(),
                label_plural: o.plural_label.clone().unwrap_or_else(|| format!("{label}s")),
                label,
                key_prefix: o.key_prefix.clone().unwrap_or_else(|| format!("a{:02}", i)),
                custom: true,
                createable: true,
                updateable: true,
                deletable: true,
                fields: all,
                by_lower: HashMap::new(),
                children: Vec::new(),
            });
        }
        for f in fields {
            let obj = list
                .iter_mut()
                .find(|o| o.name.eq_ignore_ascii_case(&f.object))
                .ok_or_else(|| format!("custom field {}: no object {:?}", f.name, f.object))?;
            obj.fields.push(custom_field(f)?);
        }
        let mut schema = Self { objects: list, by_lower: HashMap::new(), by_prefix: HashMap::new() };
        schema.index()?;
        Ok(schema)
    }

    fn index(&mut self) -> Result<(), String> {
        for (i, o) in self.objects.iter_mut().enumerate() {
            if o.key_prefix.len() != 3 || !o.key_prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("{}: key prefix {:?} must be 3 letters or digits", o.name, o.key_prefix));
            }
            if self.by_lower.insert(o.name.to_ascii_lowercase(), i).is_some() {
                return Err(format!("object {} is defined twice", o.name));
            }
            if self.by_prefix.insert(o.key_prefix.clone(), i).is_some() {
                return Err(format!("{}: key prefix {} is used twice", o.name, o.key_prefix));
            }
            for (j, f) in o.fields.iter().enumerate() {
                if o.by_lower.insert(f.name.to_ascii_lowercase(), j).is_some() {
                    return Err(format!("{}.{} is defined twice", o.name, f.name));
                }
            }
        }
        let mut children = Vec::new();
        for (ci, o) in self.objects.iter().enumerate() {
            for (fi, f) in o.fields.iter().enumerate() {
                for target in &f.reference_to {
                    if !self.by_lower.contains_key(&target.to_ascii_lowercase()) {
                        return Err(format!("{}.{} refers to unknown object {target}", o.name, f.name));
                    }
                }
                if let (Some(rel), Some(target)) = (&f.child_relationship, f.reference_to.first()) {
                    let pi = self.by_lower[&target.to_ascii_lowercase()];
                    children.push((pi, ChildRelationship { name: rel.clone(), child: ci, field: fi }));
                }
            }
        }
        for (pi, c) in children {
            self.objects[pi].children.push(c);
        }
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> Option<&SObject> {
        self.index_of(name).map(|i| &self.objects[i])
    }
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.by_lower.get(&name.to_ascii_lowercase()).copied()
    }
    /// The object an id belongs to, by its key prefix.
    pub(crate) fn by_id(&self, id: &str) -> Option<&SObject> {
        id.get(..3).and_then(|p| self.by_prefix.get(p)).map(|&i| &self.objects[i])
    }

    pub(crate) fn describe_global(&self, v: &str) -> Value {
        json!({
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": self.objects.iter().map(|o| o.global_entry(v)).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_objects_build_with_relationships() {
        let s = Schema::build(&[], &[]).unwrap();
        let account = s.get("account").unwrap();
        assert_eq!(account.key_prefix, "001");
        assert!(account.child("Contacts").is_some());
        let contact = s.get("Contact").unwrap();
        assert_eq!(contact.relationship("account").unwrap().name, "AccountId");
        let lead = s.get("Lead").unwrap();
        assert_eq!(lead.field("Status").unwrap().default_value.as_deref(), Some("Open - Not Contacted"));
        assert!(lead.field("Company").unwrap().required);
        assert_eq!(s.by_id("005000000000000").unwrap().name, "User");
        assert_eq!(label_of("BillingCity"), "Billing City");
        assert_eq!(label_of("AccountId"), "Account ID");
    }
}
