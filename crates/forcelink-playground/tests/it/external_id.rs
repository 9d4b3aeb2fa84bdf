//! Retrieve, upsert and delete by an external id on a custom field that is not unique.

use forcelink_playground::seed::{DEFAULT_SEED_TOML, Seed};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

const SHIPMENT: &str = r#"
[[custom_objects]]
name = "Shipment__c"
key_prefix = "a0S"

[[custom_objects.fields]]
name = "Tracking__c"
type = "string"
length = 40
external_id = true
"#;

#[tokio::test]
async fn a_custom_external_id_creates_updates_retrieves_and_reports_several_matches() {
    let seed = Seed::from_toml(&format!("{DEFAULT_SEED_TOML}\n{SHIPMENT}"), std::path::Path::new(".")).unwrap();
    let pg = spawn_playground_with(|c| c.seed = seed).await;
    let api = admin_api(&pg).await;
    let (_, describe) = api.get("sobjects/Shipment__c/describe").await;
    let field = describe["fields"].as_array().unwrap().iter().find(|f| f["name"] == "Tracking__c").unwrap().clone();
    assert_eq!((field["externalId"].clone(), field["idLookup"].clone()), (json!(true), json!(true)));

    let (status, body) = api.patch("sobjects/Shipment__c/Tracking__c/TRK-1", &json!({"Name": "First"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["created"], true);
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("a0S"));
    let (status, body) = api.patch("sobjects/Shipment__c/Tracking__c/TRK-1", &json!({"Name": "Renamed"})).await;
    assert_eq!((status, body["created"].clone()), (StatusCode::OK, json!(false)));
    let (status, body) =
        api.at_version("45.0").patch("sobjects/Shipment__c/Tracking__c/TRK-1", &json!({"Name": "Old API"})).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, rec) = api.get("sobjects/Shipment__c/Tracking__c/TRK-1?fields=Name,Tracking__c").await;
    assert_eq!(status, StatusCode::OK, "{rec}");
    assert_eq!((rec["Name"].clone(), rec["Id"].clone()), (json!("Old API"), json!(id)));

    // Not unique: a second record may carry the same value, and then both are offered.
    api.create("Shipment__c", json!({"Name": "Second", "Tracking__c": "TRK-1"})).await;
    for (status, body) in [
        api.get("sobjects/Shipment__c/Tracking__c/TRK-1").await,
        api.patch("sobjects/Shipment__c/Tracking__c/TRK-1", &json!({"Name": "Which?"})).await,
    ] {
        assert_eq!(status, StatusCode::MULTIPLE_CHOICES, "{body}");
        let urls = body.as_array().unwrap();
        assert_eq!(urls.len(), 2);
        assert_eq!(urls[0], format!("/services/data/v66.0/sobjects/Shipment__c/{id}"));
    }
    let (status, _) = api.delete("sobjects/Shipment__c/Tracking__c/TRK-2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api.get("sobjects/Shipment__c/Name/First").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body[0]["message"], "Provided external ID field does not exist or is not accessible: Name");
}
