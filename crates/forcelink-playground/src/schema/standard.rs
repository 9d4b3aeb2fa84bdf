//! The standard objects, declared in a compact text form (one field per line).
//!
//! Field lines read `Name type [len|p,s] flags…`; flags: `req` (required on create), `ro`
//! (read only), `co` (create only), `ext` (external id), `uniq`, `name` (name field),
//! `calc` (calculated, read only), `def=V` (default on create), `->A|B` (reference to),
//! `rel=R` (relationship name), `child=C` (child relationship name on the target), and
//! `pick=a;b;c` which takes the rest of the line.

use std::collections::HashMap;

use super::SObject;
use super::field::{Field, FieldType, system_fields};

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

/// The standard objects, in declaration order.
pub(super) fn objects() -> Result<Vec<SObject>, String> {
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
    Ok(list)
}
