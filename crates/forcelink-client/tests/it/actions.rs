//! The workflow actions against the playground: JSON in, JSON out, idempotent where Salesforce
//! allows, and a clear error when the running user lacks administrator rights.

use std::sync::Arc;

use bytes::Bytes;
use forcelink_auth::flows::password::UsernamePassword;
use forcelink_auth::secret::{ClientSecret, Password};
use forcelink_auth::{AppCredentials, Endpoints, SystemClock, TokenSource, Transport, UrlPolicy};
use forcelink_client::actions::{self, ActionName, ResetPassword, UploadDocument, UploadFile};
use forcelink_client::{Client, ClientError};
use serde_json::{Value, json};

use crate::common::*;

async fn count(client: &Client, soql: &str) -> u64 {
    client.query(soql).send().await.unwrap().total_size
}

#[tokio::test]
async fn create_and_update_users_idempotently() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let input = json!({"username": "new.hire@playground.forcelink.dev", "last_name": "Hire", "first_name": "New",
        "email": "new.hire@example.com", "profile_name": "Standard User", "fields": {"Department": "Sales"}});
    let out = actions::run(&client, ActionName::CreateUser, input.clone()).await.unwrap();
    assert_eq!(out["created"], true);
    let id = out["user_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("005"));
    let again = actions::run(&client, ActionName::CreateUser, input).await.unwrap();
    assert_eq!(again, json!({"user_id": id, "created": false}));
    let user = client.sobject("User").unwrap().retrieve(&id).unwrap().send().await.unwrap();
    assert_eq!((user["Alias"].as_str(), user["Department"].as_str()), (Some("nhire"), Some("Sales")));
    assert_eq!(user["TimeZoneSidKey"], actions::DEFAULT_TIME_ZONE);

    let out = actions::run(
        &client,
        ActionName::UpdateUser,
        json!({"user": "new.hire@playground.forcelink.dev", "fields": {"Title": "Engineer"}}),
    )
    .await
    .unwrap();
    assert_eq!(out, json!({"user_id": id, "fields": ["Title"]}));
    let user = client.sobject("User").unwrap().retrieve(&id).unwrap().fields(["Title"]).unwrap().send().await.unwrap();
    assert_eq!(user["Title"], "Engineer");

    let bad = actions::run(&client, ActionName::CreateUser, json!({"username": "x@y.z", "nope": 1})).await;
    assert!(matches!(bad, Err(ClientError::InvalidInput(_))));
}

#[tokio::test]
async fn activate_deactivate_freeze_unfreeze_report_changes() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let a = client.actions();
    let off = a.set_active(STANDARD_USER, false).await.unwrap();
    assert!(off.changed && !off.is_active);
    assert!(!a.set_active(STANDARD_USER, false).await.unwrap().changed);
    let id = off.user_id.clone();
    assert_eq!(count(&client, &format!("SELECT COUNT() FROM User WHERE Id = '{id}' AND IsActive = false")).await, 1);
    assert!(a.set_active(&id, true).await.unwrap().changed);

    let frozen = actions::run(&client, ActionName::FreezeUser, json!({"user": STANDARD_USER})).await.unwrap();
    assert_eq!(frozen["is_frozen"], true);
    assert_eq!(frozen["changed"], true);
    let login = frozen["user_login_id"].as_str().unwrap();
    assert_eq!(
        count(&client, &format!("SELECT COUNT() FROM UserLogin WHERE Id = '{login}' AND IsFrozen = true")).await,
        1
    );
    // A frozen user cannot sign in.
    let sam = standard_provider(&pg);
    assert!(forcelink_auth::TokenProvider::token(&sam).await.is_err());
    let again = actions::run(&client, ActionName::FreezeUser, json!({"user": STANDARD_USER})).await.unwrap();
    assert_eq!(again["changed"], false);
    let thawed = actions::run(&client, ActionName::UnfreezeUser, json!({"user": id})).await.unwrap();
    assert_eq!((thawed["is_frozen"].as_bool(), thawed["changed"].as_bool()), (Some(false), Some(true)));
    assert!(forcelink_auth::TokenProvider::token(&standard_provider(&pg)).await.is_ok());
}

#[tokio::test]
async fn remove_entitlements_keeps_profile_owned_assignments_and_is_idempotent() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let out = actions::run(&client, ActionName::RemoveEntitlements, json!({"user": STANDARD_USER})).await.unwrap();
    let id = out["user_id"].as_str().unwrap();
    assert_eq!(out["permission_set_assignments"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["permission_set_licenses"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["package_licenses"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out["failures"], json!([]));
    assert_eq!(
        count(&client, &format!("SELECT COUNT() FROM PermissionSetAssignment WHERE AssigneeId = '{id}'")).await,
        1
    );
    assert_eq!(count(&client, &format!("SELECT COUNT() FROM UserPackageLicense WHERE UserId = '{id}'")).await, 0);
    let again = actions::run(&client, ActionName::RemoveEntitlements, json!({"user": id})).await.unwrap();
    assert_eq!(
        again,
        json!({"user_id": id, "permission_set_assignments": [], "permission_set_licenses": [], "package_licenses": [], "failures": []})
    );
}

#[tokio::test]
async fn reset_password_sets_or_generates_one_that_signs_in() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let a = client.actions();
    let set = a
        .reset_password(ResetPassword {
            user: STANDARD_USER.into(),
            new_password: Some(Password::new("Brand-new-pw1")),
        })
        .await
        .unwrap();
    assert!(set.generated_password.is_none());
    assert!(sign_in(&pg, "Brand-new-pw1").await, "the new password signs in");
    let generated = a.reset_password(ResetPassword { user: STANDARD_USER.into(), new_password: None }).await.unwrap();
    let pw = generated.generated_password.clone().unwrap();
    assert!(pw.secret().len() >= 8);
    assert!(!format!("{generated:?}").contains(pw.secret()));
    assert!(sign_in(&pg, pw.secret()).await);
    let weak =
        a.reset_password(ResetPassword { user: STANDARD_USER.into(), new_password: Some(Password::new("short")) });
    assert_eq!(weak.await.unwrap_err().error_code(), Some("INVALID_NEW_PASSWORD"));
}

async fn sign_in(pg: &PlaygroundHandle, password: &str) -> bool {
    let transport = Transport::new(
        forcelink_auth::wire::default_http_client().unwrap(),
        Arc::new(SystemClock),
        UrlPolicy::new().allow_any_loopback(),
    );
    let source = UsernamePassword::new(
        transport,
        Endpoints::salesforce(&url::Url::parse(pg.login_url()).unwrap()),
        AppCredentials::new(DEFAULT_CLIENT, Some(ClientSecret::new(DEFAULT_SECRET))),
        STANDARD_USER,
        Password::new(password),
        Some(forcelink_auth::secret::SecurityToken::new(STANDARD_TOKEN)),
    )
    .unwrap();
    source.fetch(None).await.is_ok()
}

#[tokio::test]
async fn upload_document_as_base64_or_multipart_and_link_it() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let account = client.sobject("Account").unwrap().create(&json!({"Name": "Docs Inc"})).send().await.unwrap().id;
    let content: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    for threshold in [usize::MAX, 0] {
        let mut input = UploadDocument::new("Contract", "contract.pdf", Bytes::from(content.clone()));
        input.link_to = Some(account.to_string());
        let out = client.actions().multipart_threshold(threshold).upload_document(input).await.unwrap();
        assert_eq!(out.transfer, if threshold == 0 { "multipart" } else { "json" });
        assert!(out.content_version_id.starts_with("068"));
        assert!(out.content_document_id.starts_with("069"));
        let link = out.content_document_link_id.clone().unwrap();
        let l = client.sobject("ContentDocumentLink").unwrap().retrieve(&link).unwrap().send().await.unwrap();
        assert_eq!(l["LinkedEntityId"], account.as_str());
        let path = format!("sobjects/ContentVersion/{}/VersionData", out.content_version_id);
        let blob = client.request(reqwest::Method::GET, &path).send().await.unwrap();
        assert_eq!(blob.body.as_ref(), content.as_slice(), "the bytes round-trip ({})", out.transfer);
    }
    // JSON input with base64 content.
    let out = actions::run(
        &client,
        ActionName::UploadDocument,
        json!({"title": "Notes", "file_name": "notes.txt", "content_base64": "aGVsbG8="}),
    )
    .await
    .unwrap();
    assert!(out.get("content_document_link_id").is_none());
    let v = client.sobject("ContentVersion").unwrap().retrieve(out["content_version_id"].as_str().unwrap()).unwrap();
    let v: Value = v.fields(["ContentSize", "FileExtension"]).unwrap().send().await.unwrap();
    assert_eq!((v["ContentSize"].as_i64(), v["FileExtension"].as_str()), (Some(5), Some("txt")));
}

#[tokio::test]
async fn a_file_upload_is_streamed_from_disk_and_arrives_intact() {
    let pg = spawn_playground().await;
    let (client, _) = admin_client(&pg);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.bin");
    // 3 MiB and a bit, not a multiple of the read size, every byte value, no two chunks alike.
    let content: Vec<u8> = (0..3 * 1024 * 1024 + 4321u32).map(|i| (i ^ (i >> 11)) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook = seen.clone();
    let mut input = UploadFile::new(&path).unwrap().on_progress(Arc::new(move |sent, total| {
        hook.lock().unwrap().push((sent, total));
    }));
    input.description = Some("streamed".into());
    let out = client.actions().multipart_threshold(1024 * 1024).upload_document_file(input).await.unwrap();
    assert_eq!(out.transfer, "multipart");
    let path_of = format!("sobjects/ContentVersion/{}/VersionData", out.content_version_id);
    let blob = client.request(reqwest::Method::GET, &path_of).send().await.unwrap();
    assert!(blob.body.as_ref() == content.as_slice(), "the bytes round-trip ({} bytes back)", blob.body.len());
    let v = client.sobject("ContentVersion").unwrap().retrieve(&out.content_version_id).unwrap();
    let v: Value = v.fields(["Title", "PathOnClient", "Description"]).unwrap().send().await.unwrap();
    assert_eq!((v["Title"].as_str(), v["PathOnClient"].as_str()), (Some("scan"), Some("scan.bin")));
    assert_eq!(v["Description"], "streamed");
    // Progress went from 0 up to the whole body (file plus multipart framing), never backwards.
    let seen = seen.lock().unwrap().clone();
    let total = seen[0].1;
    assert!(total > content.len() as u64);
    assert_eq!((seen[0].0, seen.last().copied()), (0, Some((total, total))));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0) && seen.len() > 10, "{} steps", seen.len());

    // A small file goes as JSON; a missing one is a clear error before anything is sent.
    let small = dir.path().join("note.txt");
    std::fs::write(&small, b"hello").unwrap();
    let out = client.actions().upload_document_file(UploadFile::new(&small).unwrap()).await.unwrap();
    assert_eq!(out.transfer, "json");
    let missing = client.actions().upload_document_file(UploadFile::new(dir.path().join("nope.pdf")).unwrap()).await;
    assert!(matches!(&missing, Err(ClientError::InvalidInput(m)) if m.contains("nope.pdf")), "{missing:?}");
}

#[tokio::test]
async fn non_admins_get_a_clear_rights_error() {
    let pg = spawn_playground().await;
    let sam = standard_client(&pg);
    let err = actions::run(&sam, ActionName::DeactivateUser, json!({"user": ADMIN})).await.unwrap_err();
    let ClientError::InsufficientRights { action, error, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*action, "deactivate user");
    assert_eq!(error.status, 403);
    assert!(err.to_string().contains("System Administrator"), "{err}");
    let err = actions::run(&sam, ActionName::RemoveEntitlements, json!({"user": ADMIN})).await.unwrap_err();
    assert!(matches!(err, ClientError::InsufficientRights { .. }), "{err:?}");
}
