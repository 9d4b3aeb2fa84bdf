//! Names from the domain, checked before anything is sent: [`SObjectType`] (an object's API
//! name), [`FieldName`] and [`RecordId`]. A value that could change the meaning of a URL path
//! (`../`, `?`, `/`) is refused here.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// Longest API name Salesforce allows for objects and fields (80, with namespace and suffix).
pub const MAX_API_NAME_LEN: usize = 80;

fn is_api_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_API_NAME_LEN
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

macro_rules! api_name {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Letters, digits and underscores, starting with a letter, at most 80 characters
            /// (`Account`, `Invoice__c`, `ns__Thing__c`).
            pub fn new(name: impl Into<String>) -> Result<Self, ClientError> {
                let name = name.into();
                if is_api_name(&name) {
                    Ok(Self(name))
                } else {
                    Err(ClientError::InvalidInput(format!(
                        concat!("{:?} is not a valid ", $what, " API name (letters, digits and underscores, starting with a letter)"),
                        name
                    )))
                }
            }
            /// The name as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl TryFrom<String> for $name {
            type Error = ClientError;
            fn try_from(s: String) -> Result<Self, ClientError> {
                Self::new(s)
            }
        }
        impl TryFrom<&str> for $name {
            type Error = ClientError;
            fn try_from(s: &str) -> Result<Self, ClientError> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

api_name!(
    /// An sObject's API name (`Account`, `Invoice__c`).
    SObjectType,
    "sObject"
);
api_name!(
    /// A field's API name (`Name`, `External_Id__c`).
    FieldName,
    "field"
);

/// A record id: 15 (case-sensitive) or 18 (case-safe) letters and digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RecordId(String);

impl RecordId {
    /// Checks the form only (15 or 18 ASCII letters and digits), not that the record exists.
    pub fn new(id: impl Into<String>) -> Result<Self, ClientError> {
        let id = id.into();
        if matches!(id.len(), 15 | 18) && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(id))
        } else {
            Err(ClientError::InvalidInput(format!(
                "{id:?} is not a Salesforce record id (15 or 18 letters and digits)"
            )))
        }
    }
    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The 3-character key prefix naming the object (`001` Account, `005` User).
    pub fn key_prefix(&self) -> &str {
        &self.0[..3]
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl TryFrom<String> for RecordId {
    type Error = ClientError;
    fn try_from(s: String) -> Result<Self, ClientError> {
        Self::new(s)
    }
}
impl TryFrom<&str> for RecordId {
    type Error = ClientError;
    fn try_from(s: &str) -> Result<Self, ClientError> {
        Self::new(s)
    }
}
impl From<RecordId> for String {
    fn from(v: RecordId) -> String {
        v.0
    }
}
impl AsRef<str> for RecordId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_refuse_path_tricks() {
        assert!(SObjectType::new("ns__Invoice__c").is_ok());
        for bad in ["", "../limits", "Account/x", "Acc ount", "_x", "1abc", "Account?x=1"] {
            assert!(SObjectType::new(bad).is_err(), "{bad}");
            assert!(FieldName::new(bad).is_err(), "{bad}");
        }
        assert!(RecordId::new("001D000000K0fXOIAZ").is_ok());
        assert!(RecordId::new("001D000000K0fXO").is_ok());
        assert!(RecordId::new("001D000000K0fX/..").is_err());
        assert!(RecordId::new("001").is_err());
    }
}
