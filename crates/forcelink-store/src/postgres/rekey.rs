//! Re-sealing a PostgreSQL store under a new master key (see [`crate::rotation`]).

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;

use super::apikeys::read_api_key_rows;
use super::connect_client;
use super::schema::stored_key_id_of;
use crate::codec;
use crate::crypto::MasterKey;
use crate::pgconnect::redact_url;
use crate::rows::{ResealCounts, reseal_ephemeral, reseal_subscription_secret, reseal_webhook_secret};
use crate::{OpenError, key_mismatch};

/// Re-seals every token set, connection spec, webhook and subscription secret and ephemeral value with `new`, and
/// re-signs every API-key row, in one transaction that also records `new`'s id. Writers wait on the table locks; `before_commit` runs once they are held.
pub(crate) async fn reseal(
    url: &str,
    old: &MasterKey,
    new: &MasterKey,
    before_commit: impl FnOnce() -> Result<(), OpenError>,
) -> Result<ResealCounts, OpenError> {
    let fail = |e: tokio_postgres::Error| OpenError::Postgres(format!("re-sealing the store: {e}"));
    let mut client = connect_client(url).await?;
    let tx = client.transaction().await.map_err(fail)?;
    match reseal_in(&tx, url, old, new, before_commit).await {
        Ok(counts) => {
            tx.commit().await.map_err(fail)?;
            Ok(counts)
        }
        Err(e) => {
            // Rolled back now, so the table locks do not outlive this call.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

/// The re-sealing inside `tx`; nothing is committed here.
async fn reseal_in(
    tx: &tokio_postgres::Transaction<'_>,
    url: &str,
    old: &MasterKey,
    new: &MasterKey,
    before_commit: impl FnOnce() -> Result<(), OpenError>,
) -> Result<ResealCounts, OpenError> {
    let fail = |e: tokio_postgres::Error| OpenError::Postgres(format!("re-sealing the store: {e}"));
    // Blocks every writer (readers go on) until the commit; checked again under the lock, as
    // another rotation may have finished meanwhile.
    tx.batch_execute(
        "LOCK TABLE forcelink_meta, forcelink_token_sets, forcelink_connections, forcelink_api_keys, \
         forcelink_webhooks, forcelink_subscriptions, forcelink_ephemeral IN EXCLUSIVE MODE",
    )
    .await
    .map_err(fail)?;
    if let Some(id) = stored_key_id_of(tx).await.map_err(fail)?
        && id != old.id_hex()
    {
        return Err(key_mismatch(&redact_url(url), &id, old));
    }
    let unreadable = |e: StoreError| OpenError::Postgres(format!("{e}; nothing was changed"));
    let tokens = tx.query("SELECT connection, sealed FROM forcelink_token_sets", &[]).await.map_err(fail)?;
    for row in &tokens {
        let id = ConnectionId::new(row.get::<_, String>(0));
        let resealed = codec::reseal(old, new, &id, &row.get::<_, Vec<u8>>(1)).map_err(unreadable)?;
        // The version moves too, so a writer still holding the old key loses its compare-and-swap.
        tx.execute(
            "UPDATE forcelink_token_sets SET sealed = $1, version = version + 1 WHERE connection = $2",
            &[&resealed, &id.as_str()],
        )
        .await
        .map_err(fail)?;
    }
    let specs = tx.query("SELECT name, sealed FROM forcelink_connections", &[]).await.map_err(fail)?;
    for row in &specs {
        let id = ConnectionId::new(row.get::<_, String>(0));
        let resealed = codec::reseal_spec(old, new, &id, &row.get::<_, Vec<u8>>(1)).map_err(unreadable)?;
        tx.execute("UPDATE forcelink_connections SET sealed = $1 WHERE name = $2", &[&resealed, &id.as_str()])
            .await
            .map_err(fail)?;
    }
    let hooks = tx.query("SELECT id, secret FROM forcelink_webhooks", &[]).await.map_err(fail)?;
    for row in &hooks {
        let id: String = row.get(0);
        let resealed = reseal_webhook_secret(old, new, &id, row.get(1)).map_err(unreadable)?;
        tx.execute("UPDATE forcelink_webhooks SET secret = $1 WHERE id = $2", &[&resealed, &id]).await.map_err(fail)?;
    }
    let subs = tx.query("SELECT id, secret FROM forcelink_subscriptions", &[]).await.map_err(fail)?;
    for row in &subs {
        let id: String = row.get(0);
        let resealed = reseal_subscription_secret(old, new, &id, row.get(1)).map_err(unreadable)?;
        tx.execute("UPDATE forcelink_subscriptions SET secret = $1 WHERE id = $2", &[&resealed, &id])
            .await
            .map_err(fail)?;
    }
    let records = tx.query("SELECT kind, key_hash, value FROM forcelink_ephemeral", &[]).await.map_err(fail)?;
    for row in &records {
        let (kind, hash): (String, String) = (row.get(0), row.get(1));
        let resealed = reseal_ephemeral(old, new, &kind, &hash, row.get(2)).map_err(unreadable)?;
        tx.execute(
            "UPDATE forcelink_ephemeral SET value = $1 WHERE kind = $2 AND key_hash = $3",
            &[&resealed, &kind, &hash],
        )
        .await
        .map_err(fail)?;
    }
    let (old_mac, new_mac) = (old.api_key_mac_key(), new.api_key_mac_key());
    let mut api_keys = 0;
    for mut row in read_api_key_rows(tx, None).await.map_err(fail)? {
        if !row.resign(&old_mac, &new_mac) {
            continue;
        }
        tx.execute("UPDATE forcelink_api_keys SET mac = $1 WHERE id = $2", &[&row.mac, &row.id]).await.map_err(fail)?;
        api_keys += 1;
    }
    tx.execute(
        "INSERT INTO forcelink_meta (key, value) VALUES ('key_id', $1)
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        &[&new.id_hex()],
    )
    .await
    .map_err(fail)?;
    before_commit()?;
    Ok((tokens.len(), specs.len(), api_keys))
}
