//! Snapshot then stream. A subscription with `snapshot` (a SOQL query) first delivers the rows
//! the query returns now, as `salesforce.snapshot` events, then the changes since. The consumer
//! opens the stream before the snapshot and this task waits until the stream's position is saved
//! (at its first event or keep-alive: Salesforce sends one within 270 s of a quiet topic), so
//! every change after that position is in the stream; only then does the Bulk 2.0 query job
//! start. A change made while the query runs may show in both; none is in neither. The
//! stream's events wait in the outbox until every snapshot row is delivered ([`super::deliver`]).
//!
//! Rows are enqueued as the job's result pages arrive (one page in memory), under ids made from
//! the job and record ids, and the subscription is marked `snapshot_enqueued` after the last.
//! A consumer that dies mid-snapshot runs a new job when it restarts: receivers may get rows
//! twice (with new ids) but never miss one.

use std::collections::BTreeMap;
use std::sync::Arc;

use forcelink_client::bulk::{Bulk, JobKind};
use forcelink_store::{NewDelivery, SubscriptionRecord};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::spec::{self, Spec};
use super::status::{Failed, report};
use crate::state::BrokerState;

/// Rows enqueued in one store write. 500.
const ROWS_PER_WRITE: usize = 500;

/// Runs the snapshot of `sub` once `position_saved` turns true.
pub(crate) async fn run(
    state: BrokerState,
    sub: SubscriptionRecord,
    mut position_saved: watch::Receiver<bool>,
    wake: Arc<Notify>,
) {
    if position_saved.wait_for(|saved| *saved).await.is_err() {
        return;
    }
    if let Err(e) = snapshot(&state, &sub, &wake).await {
        tracing::warn!(subscription = %sub.id, "snapshot: {}", e.message);
        report(&state, &sub.id, |r| {
            r.phase = "snapshot".into();
            r.error = Some(format!("the snapshot failed: {}", e.message));
            r.fix = e.fix.clone().or_else(|| Some("fix the query or the connection; the consumer retries".into()));
        })
        .await;
    }
}

async fn snapshot(state: &BrokerState, sub: &SubscriptionRecord, wake: &Arc<Notify>) -> Result<(), Failed> {
    let Some(spec_now) = state.store().subscription(&sub.id).await? else { return Ok(()) };
    let spec = Spec::parse(&spec_now.spec)?;
    let Some(query) = spec.snapshot.clone() else { return Ok(()) };
    if spec.snapshot_enqueued {
        return Ok(());
    }
    let entry = state.entry(&sub.connection).await?;
    let client = entry.client.clone().ok_or_else(|| Failed {
        message: format!("connection {:?} has no REST client (its API version is not valid)", sub.connection),
        fix: None,
    })?;
    let bulk =
        Bulk::new(client, Arc::new(entry.cache.clone())).map_err(|e| Failed { message: e.to_string(), fix: None })?;
    let bulk_err = |e: forcelink_client::bulk::BulkError| Failed { message: e.to_string(), fix: None };
    let job = bulk.create_query(&query, false).await.map_err(bulk_err)?;
    report(state, &sub.id, |r| {
        r.snapshot_job = Some(job.id.clone());
        r.snapshot_rows = 0;
    })
    .await;
    bulk.wait(JobKind::Query, &job.id, &mut |_| {}).await.map_err(bulk_err)?;
    let entity = entity_of(&query);
    let target = super::deliver::snapshot_target(&sub.id);
    let mut records = bulk.query_records::<BTreeMap<String, String>>(&job.id);
    let mut batch: Vec<NewDelivery> = Vec::with_capacity(ROWS_PER_WRITE);
    let mut rows: u64 = 0;
    loop {
        let next = records.next().await.transpose().map_err(bulk_err)?;
        if let Some(record) = &next {
            rows += 1;
            let key = record.get("Id").cloned().unwrap_or_else(|| format!("row-{rows}"));
            let now = state.now();
            let data = json!({
                "topic": spec.topic,
                "entity": entity,
                "job_id": job.id,
                "row": rows,
                "record": record.iter().map(|(k, v)| (k.clone(), csv_value(v))).collect::<serde_json::Map<_, _>>(),
            });
            batch.push(NewDelivery {
                id: spec::snapshot_id(&sub.id, &format!("{}/{key}", job.id)),
                target: target.clone(),
                event_type: "salesforce.snapshot".to_owned(),
                connection: sub.connection.clone(),
                body: spec::body("salesforce.snapshot", now, data),
                created_at: now,
            });
        }
        if batch.len() >= ROWS_PER_WRITE || (next.is_none() && !batch.is_empty()) {
            state.store().enqueue_deliveries(&batch).await?;
            batch.clear();
            wake.notify_one();
            report(state, &sub.id, |r| r.snapshot_rows = rows).await;
        }
        if next.is_none() {
            break;
        }
    }
    let Some(current) = state.store().subscription(&sub.id).await? else { return Ok(()) };
    let mut done = Spec::parse(&current.spec)?;
    done.snapshot_enqueued = true;
    state.store().set_subscription_spec(&sub.id, &done.to_text()).await?;
    report(state, &sub.id, |r| {
        r.phase = "streaming".into();
        r.snapshot_rows = rows;
    })
    .await;
    wake.notify_one();
    Ok(())
}

/// A Bulk 2.0 CSV value as JSON: empty is null (Bulk 2.0 writes nulls as empty fields).
fn csv_value(v: &str) -> Value {
    if v.is_empty() { Value::Null } else { Value::String(v.to_owned()) }
}

/// The object a query reads: the word after the top-level `FROM`.
pub(crate) fn entity_of(query: &str) -> String {
    let words: Vec<&str> = query.split_whitespace().collect();
    words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("from"))
        .and_then(|i| words.get(i + 1))
        .map(|w| w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_').to_owned())
        .unwrap_or_default()
}

/// Checks a snapshot query before it is saved: a SELECT with a FROM, within the length limit.
pub(crate) fn check_query(query: &str) -> Result<String, crate::error::ErrorResponse> {
    let q = query.trim();
    let starts = q.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("select "));
    if !starts || entity_of(q).is_empty() || q.len() > spec::MAX_SNAPSHOT_LEN {
        return Err(crate::error::ErrorResponse::bad_request(format!(
            "snapshot: {:?} is not a SOQL query (SELECT … FROM Object, at most {} characters)",
            q.chars().take(100).collect::<String>(),
            spec::MAX_SNAPSHOT_LEN
        )));
    }
    Ok(q.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entity_is_the_word_after_from_and_queries_are_checked() {
        assert_eq!(entity_of("SELECT Id, Name FROM Account WHERE Name != null"), "Account");
        assert_eq!(entity_of("select id from Order__c"), "Order__c");
        assert!(check_query("SELECT Id FROM Account").is_ok());
        assert!(check_query("DELETE FROM Account").is_err());
        assert!(check_query("SELECT Id").is_err());
        assert!(check_query(&format!("SELECT Id FROM Account WHERE Name = '{}'", "x".repeat(10_000))).is_err());
    }
}
