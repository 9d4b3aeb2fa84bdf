//! The OpenAPI generator, checked by an independent validator (Python openapi-spec-validator,
//! installed by scripts/python-tools-setup). The test fails, never skips, without it.

use std::process::Command;

use forcelink_client::openapi::{GeneratorOptions, generate};
use forcelink_client::{ApiVersion, SObjectDescribe};
use serde_json::{Value, json};

use crate::common::*;

const VALIDATE: &str = "import json, sys\n\
from openapi_spec_validator import validate\n\
validate(json.load(open(sys.argv[1])))\n\
print('valid')\n";

/// Runs the validator on `doc`: Ok when valid, Err with its message when not. Panics when the
/// validator cannot run at all.
fn validate(doc: &Value) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg("-c")
        .arg(VALIDATE)
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("python3 could not be started ({e}); run scripts/python-tools-setup"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'openapi_spec_validator'"),
        "the OpenAPI validator is not installed; run scripts/python-tools-setup\n{stderr}"
    );
    if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "valid" {
        Ok(())
    } else {
        Err(stderr.chars().rev().take(800).collect::<String>().chars().rev().collect())
    }
}

#[tokio::test]
async fn the_generated_document_is_valid_openapi_3_1() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let mut describes: Vec<SObjectDescribe> = Vec::new();
    for name in ["Account", "Contact", "Invoice__c", "User", "ContentVersion"] {
        describes.push((*client.sobject(name).unwrap().describe().send().await.unwrap()).clone());
    }
    let whizbang = forcelink_test_support::fixture("rest/describe_custom_object_whizbang");
    describes.push(serde_json::from_value(whizbang["response"]["body"].clone()).unwrap());
    let doc = generate(
        &describes,
        &GeneratorOptions::new(ApiVersion::new("64.0").unwrap(), "/v1/connections/{connection}/sf"),
    );

    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "/v1/connections/{connection}/sf");
    let invoice = &doc["components"]["schemas"]["Invoice__c"]["properties"];
    assert_eq!(invoice["Status__c"]["enum"], json!(["Draft", "Sent", "Paid", null]));
    let account_create = &doc["components"]["schemas"]["AccountCreate"];
    assert!(account_create["required"].as_array().unwrap().contains(&json!("Name")));
    assert!(doc["paths"]["/services/data/v64.0/sobjects/Account/{id}"]["patch"].is_object());
    // User cannot be deleted on Salesforce; the document does not offer it.
    assert!(doc["paths"]["/services/data/v64.0/sobjects/User/{id}"].get("delete").is_none());

    validate(&doc).unwrap_or_else(|e| panic!("the generated document is not valid OpenAPI:\n{e}"));

    // The validator is not a rubber stamp: a broken document is refused.
    let mut broken = doc.clone();
    broken["paths"]["/services/data/v64.0/query"]["get"]["responses"] = json!({"200": {"content": 5}});
    assert!(validate(&broken).is_err(), "the validator accepted a broken document");
}
