//! User administration: activation, freezing, entitlements, documents, passwords, permissions.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::*;

async fn user_id(api: &Api, username: &str) -> String {
    let q = api.query(&format!("SELECT Id FROM User WHERE Username = '{username}'")).await;
    q["records"][0]["Id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn deactivating_and_freezing_stop_logins_and_sessions() {
    let pg = spawn_playground().await;
    let admin = admin_api(&pg).await;
    let sam = user_api(&pg, STANDARD_USER, STANDARD_PASSWORD, STANDARD_TOKEN).await;
    assert_eq!(sam.get("limits").await.0, StatusCode::OK);
    let id = user_id(&admin, STANDARD_USER).await;

    let q = admin
        .query(&format!("SELECT Id, UserId, IsFrozen, IsPasswordLocked FROM UserLogin WHERE UserId = '{id}'"))
        .await;
    assert_eq!(q["totalSize"], 1);
    let login = q["records"][0]["Id"].as_str().unwrap().to_owned();
    assert_eq!(q["records"][0]["IsFrozen"], false);
    let (status, _) = admin.patch(&format!("sobjects/UserLogin/{login}"), &json!({"IsFrozen": true})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(sam.get("limits").await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = password_grant(&pg, STANDARD_USER, &format!("{STANDARD_PASSWORD}{STANDARD_TOKEN}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    admin.patch(&format!("sobjects/UserLogin/{login}"), &json!({"IsFrozen": false})).await;
    let sam = user_api(&pg, STANDARD_USER, STANDARD_PASSWORD, STANDARD_TOKEN).await;

    let (status, _) = admin.patch(&format!("sobjects/User/{id}"), &json!({"IsActive": false})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(sam.get("limits").await.0, StatusCode::UNAUTHORIZED);
    let (_, user) = admin.get(&format!("sobjects/User/{id}")).await;
    assert_eq!(user["IsActive"], false);
    admin.patch(&format!("sobjects/User/{id}"), &json!({"IsActive": true})).await;
    user_api(&pg, STANDARD_USER, STANDARD_PASSWORD, STANDARD_TOKEN).await;
    // The control API and the records agree.
    pg.control.set_user(STANDARD_USER, json!({"frozen": true})).await;
    let q = admin.query(&format!("SELECT IsFrozen FROM UserLogin WHERE UserId = '{id}'")).await;
    assert_eq!(q["records"][0]["IsFrozen"], true);
    // Users cannot be deleted.
    let (status, body) = admin.delete(&format!("sobjects/User/{id}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn entitlements_can_be_removed_except_profile_owned_assignments() {
    let pg = spawn_playground().await;
    let admin = admin_api(&pg).await;
    let id = user_id(&admin, STANDARD_USER).await;
    let q = admin.query(&format!("SELECT Id, PermissionSet.Name, PermissionSet.IsOwnedByProfile FROM PermissionSetAssignment WHERE AssigneeId = '{id}' ORDER BY PermissionSet.IsOwnedByProfile")).await;
    assert_eq!(q["totalSize"], 2);
    let standalone = q["records"][0]["Id"].as_str().unwrap().to_owned();
    let owned = q["records"][1]["Id"].as_str().unwrap().to_owned();
    assert_eq!(q["records"][1]["PermissionSet"]["IsOwnedByProfile"], true);
    let (status, body) = admin.delete(&format!("sobjects/PermissionSetAssignment/{owned}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "DELETE_FAILED");
    assert_eq!(admin.delete(&format!("sobjects/PermissionSetAssignment/{standalone}")).await.0, StatusCode::NO_CONTENT);
    let q = admin.query(&format!("SELECT COUNT() FROM PermissionSetAssignment WHERE AssigneeId = '{id}' AND PermissionSet.IsOwnedByProfile = false")).await;
    assert_eq!(q["totalSize"], 0);
    for (object, field) in [("PermissionSetLicenseAssign", "AssigneeId"), ("UserPackageLicense", "UserId")] {
        let q = admin.query(&format!("SELECT Id FROM {object} WHERE {field} = '{id}'")).await;
        assert_eq!(q["totalSize"], 1, "{object}");
        let rid = q["records"][0]["Id"].as_str().unwrap();
        assert_eq!(admin.delete(&format!("sobjects/{object}/{rid}")).await.0, StatusCode::NO_CONTENT, "{object}");
        assert_eq!(admin.query(&format!("SELECT COUNT() FROM {object} WHERE {field} = '{id}'")).await["totalSize"], 0);
    }
    // Re-assigning works; assigning twice is a duplicate.
    let ps = admin.query("SELECT Id FROM PermissionSet WHERE Name = 'Sales_Operations'").await["records"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin.create("PermissionSetAssignment", json!({"AssigneeId": id, "PermissionSetId": ps})).await;
    let (status, body) =
        admin.post("sobjects/PermissionSetAssignment", &json!({"AssigneeId": id, "PermissionSetId": ps})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "DUPLICATE_VALUE");
}

#[tokio::test]
async fn non_admins_get_insufficient_access() {
    let pg = spawn_playground().await;
    let admin = admin_api(&pg).await;
    let sam = user_api(&pg, STANDARD_USER, STANDARD_PASSWORD, STANDARD_TOKEN).await;
    let admin_id = user_id(&admin, ADMIN).await;
    let (status, body) = sam.patch(&format!("sobjects/User/{admin_id}"), &json!({"IsActive": false})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body[0]["errorCode"], "INSUFFICIENT_ACCESS_OR_READONLY");
    let q = sam.query(&format!("SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = '{admin_id}'")).await;
    let psa = q["records"][0]["Id"].as_str().unwrap();
    assert_eq!(sam.delete(&format!("sobjects/PermissionSetAssignment/{psa}")).await.0, StatusCode::FORBIDDEN);
    let (status, body) =
        sam.post(&format!("sobjects/User/{admin_id}/password"), &json!({"NewPassword": "Whatever123"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body[0]["errorCode"], "INSUFFICIENT_ACCESS");
    // Ordinary records are fine.
    sam.create("Account", json!({"Name": "Sam's"})).await;
}

#[tokio::test]
async fn created_user_gets_a_login_and_a_password_that_works() {
    let pg = spawn_playground().await;
    let admin = admin_api(&pg).await;
    let profile = admin.query("SELECT Id FROM Profile WHERE Name = 'Standard User'").await["records"][0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = json!({"Username": "new.user@playground.forcelink.dev", "LastName": "User", "FirstName": "New", "Email": "new.user@example.com",
        "Alias": "nuser", "TimeZoneSidKey": "America/Los_Angeles", "LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8",
        "LanguageLocaleKey": "en_US", "ProfileId": profile});
    let id = admin.create("User", user.clone()).await;
    let (status, body) = admin.post("sobjects/User", &user).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "DUPLICATE_USERNAME");
    let (status, body) = admin.post("sobjects/User", &json!({"Username": "x@y.dev"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "REQUIRED_FIELD_MISSING");
    let q = admin.query(&format!("SELECT IsFrozen FROM UserLogin WHERE UserId = '{id}'")).await;
    assert_eq!(q["totalSize"], 1);

    let (status, body) = admin.get(&format!("sobjects/User/{id}/password")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"isExpired": false})));
    let (status, body) = admin.post(&format!("sobjects/User/{id}/password"), &json!({"NewPassword": "short"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body[0]["errorCode"], "INVALID_NEW_PASSWORD");
    let (status, _) = admin.post(&format!("sobjects/User/{id}/password"), &json!({"NewPassword": "Brand1New2"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let newbie = user_api(&pg, "new.user@playground.forcelink.dev", "Brand1New2", "").await;
    let (status, me) = newbie.get(&format!("sobjects/User/{id}")).await;
    assert_eq!((status, me["Username"].as_str()), (StatusCode::OK, Some("new.user@playground.forcelink.dev")));
    let (status, reset) = admin.delete(&format!("sobjects/User/{id}/password")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(reset["NewPassword"].as_str().unwrap().len() >= 8);
}

#[tokio::test]
async fn content_version_creates_document_and_links() {
    let pg = spawn_playground().await;
    let admin = admin_api(&pg).await;
    let account = admin.create("Account", json!({"Name": "Docs"})).await;
    let data = base64::engine::general_purpose::STANDARD.encode(b"hello world");
    let id = admin.create("ContentVersion", json!({"Title": "Hello", "PathOnClient": "hello.txt", "VersionData": data, "FirstPublishLocationId": account})).await;
    assert!(id.starts_with("068"));
    let (_, v) = admin.get(&format!("sobjects/ContentVersion/{id}")).await;
    let doc = v["ContentDocumentId"].as_str().unwrap().to_owned();
    assert!(doc.starts_with("069"));
    assert_eq!(v["ContentSize"], 11);
    assert_eq!(v["FileExtension"], "txt");
    assert_eq!(v["VersionData"], format!("/services/data/v66.0/sobjects/ContentVersion/{id}/VersionData"));
    let blob = admin
        .http
        .get(admin.url(&format!("sobjects/ContentVersion/{id}/VersionData")))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(blob.bytes().await.unwrap().as_ref(), b"hello world");
    let links =
        admin.query(&format!("SELECT LinkedEntityId FROM ContentDocumentLink WHERE ContentDocumentId = '{doc}'")).await;
    let linked: Vec<&str> =
        links["records"].as_array().unwrap().iter().map(|r| r["LinkedEntityId"].as_str().unwrap()).collect();
    assert!(linked.contains(&account.as_str()), "{linked:?}");
    let (_, d) = admin.get(&format!("sobjects/ContentDocument/{doc}")).await;
    assert_eq!(d["LatestPublishedVersionId"], id.as_str());

    // Multipart: entity_content JSON plus the binary part; a second version of the document.
    let form = reqwest::multipart::Form::new()
        .part(
            "entity_content",
            reqwest::multipart::Part::text(
                json!({"Title": "Hello v2", "PathOnClient": "hello.txt", "ContentDocumentId": doc}).to_string(),
            )
            .mime_str("application/json")
            .unwrap(),
        )
        .part(
            "VersionData",
            reqwest::multipart::Part::bytes(b"second".to_vec())
                .file_name("hello.txt")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    let resp = admin
        .http
        .post(admin.url("sobjects/ContentVersion"))
        .bearer_auth(&admin.token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, v2) = admin.get(&format!("sobjects/ContentVersion/{}", body["id"].as_str().unwrap())).await;
    assert_eq!(v2["VersionNumber"], "2");
    assert_eq!(v2["ContentSize"], 6);
    let (status, body) = admin
        .post("sobjects/ContentVersion", &json!({"Title": "No data", "PathOnClient": "x.txt", "VersionData": "!!!"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let _: Value = body;
}
