//! Webhooks that survive a crash: `forcelink serve` killed with SIGKILL while its deliveries
//! wait in the store's outbox delivers every one after a restart on the same store, with the
//! `webhook-id` and body the receiver saw before, signed per Standard Webhooks.

#![allow(clippy::unwrap_used)] // test helpers: a failed step should fail the test at once

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::broker::{Broker, admin_key, api, eventually};
use crate::home::Home;
use crate::tinyhttp::{Received, Receiver};

/// Whether `webhook-signature` holds `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`
/// under the key bytes of `whsec_…` (the Standard Webhooks scheme, computed independently of the
/// broker's code).
pub fn signed_by(secret: &str, d: &Received) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("a whsec_ secret")).expect("base64 key");
    let (Some(id), Some(ts), Some(sigs)) =
        (d.headers.get("webhook-id"), d.headers.get("webhook-timestamp"), d.headers.get("webhook-signature"))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{ts}.{}", d.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    // Several signatures may be sent, space-separated (key rotation).
    sigs.split(' ').any(|s| s == expected)
}

fn event_type(d: &Received) -> String {
    let v: Value =
        serde_json::from_str(&d.body).unwrap_or_else(|e| panic!("a webhook body is not JSON ({e}): {}", d.body));
    v["type"].as_str().unwrap_or_else(|| panic!("no type in {v}")).to_owned()
}

/// An access-token connection to a Salesforce host: creating and deleting it makes events
/// without contacting anything (an unused connection is never checked).
fn pasted(name: &str) -> Value {
    json!({"name": name, "method": "access-token", "access_token": "00Dxx0000000001!AQ4AQnotarealtoken",
        "instance_url": "https://acme.my.salesforce.com"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_pending_when_the_broker_is_killed_arrive_after_a_restart_with_the_same_ids_and_valid_signatures() {
    let receiver = Receiver::start(500).await;
    let home = Home::new();
    let admin = admin_key(&home).await;
    // The receiver is plain http on loopback: allowed explicitly, as an operator would.
    let allow = ["--allow-origin", receiver.origin.as_str()];
    let broker = Broker::start(&home, &allow).await;
    let base = broker.base.clone();
    let (s, created) =
        api(&base, "POST", "/v1/webhooks", &admin, Some(json!({"url": receiver.url, "events": ["connection.*"]})))
            .await;
    assert_eq!(s, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    let hook = created["id"].as_str().unwrap().to_owned();
    for name in ["alpha", "beta", "gamma"] {
        let (s, v) = api(&base, "POST", "/v1/connections", &admin, Some(pasted(name))).await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = api(&base, "DELETE", "/v1/connections/beta?revoke=false", &admin, None).await;
    assert_eq!(s, 200, "{v}");

    // Each delivery was tried, refused with 500 and is waiting for its retry in the outbox.
    let deliveries = format!("/v1/webhooks/{hook}/deliveries");
    let waiting = eventually("four deliveries refused once and pending", || async {
        let (_, list) = api(&base, "GET", &deliveries, &admin, None).await;
        let all = list["deliveries"].as_array()?.clone();
        let refused =
            all.iter().all(|d| d["state"] == "pending" && d["attempts"].as_u64() >= Some(1) && d["last_status"] == 500);
        (all.len() == 4 && refused).then_some(all)
    })
    .await;
    let before: HashMap<String, Received> = receiver
        .received()
        .into_iter()
        .map(|d| (d.headers.get("webhook-id").cloned().unwrap_or_default(), d))
        .collect();
    assert_eq!(before.len(), 4, "one id per event: {:?}", before.keys());
    assert!(before.values().all(|d| d.answered == 500));
    for d in &waiting {
        assert!(before.contains_key(d["id"].as_str().unwrap()), "the receiver saw {d}");
    }

    broker.kill().await;
    receiver.answer(204);
    let restarted = Broker::start(&home, &allow).await;

    let accepted = eventually("every event accepted after the restart", || async {
        let ok: Vec<Received> = receiver.received().into_iter().filter(|d| d.answered == 204).collect();
        let ids: std::collections::BTreeSet<&String> = ok.iter().filter_map(|d| d.headers.get("webhook-id")).collect();
        (ids.len() == 4).then_some(ok)
    })
    .await;
    let mut types = BTreeMap::new();
    for d in &accepted {
        let id = &d.headers["webhook-id"];
        let first = before.get(id).unwrap_or_else(|| panic!("{id} was not pending before the crash"));
        assert_eq!(d.body, first.body, "the same event, byte for byte");
        assert!(signed_by(&secret, d), "a valid signature: {:?}", d.headers);
        assert!(signed_by(&secret, first), "the refused attempt was signed too");
        *types.entry(event_type(d)).or_insert(0) += 1;
    }
    let stranger = format!("whsec_{}", STANDARD.encode([7u8; 32]));
    assert!(!signed_by(&stranger, &accepted[0]), "another key does not verify");
    let want: BTreeMap<String, i32> =
        [("connection.created".to_owned(), 3), ("connection.deleted".to_owned(), 1)].into_iter().collect();
    assert_eq!(types, want, "at least once; de-duplicated by id, exactly these events");
    // The outbox, read through the new process, shows them delivered on a later attempt.
    let base = restarted.base.clone();
    let list = eventually("the outbox shows every delivery delivered", || async {
        let (_, list) = api(&base, "GET", &deliveries, &admin, None).await;
        let all = list["deliveries"].as_array()?.clone();
        all.iter().all(|d| d["state"] == "delivered").then_some(all)
    })
    .await;
    for d in &list {
        assert!(d["attempts"].as_u64() >= Some(2), "refused before the crash, delivered after: {d}");
        assert_eq!(d["last_status"], 204, "{d}");
    }
    assert!(!restarted.log().contains("panicked"), "{}", restarted.log());
}
