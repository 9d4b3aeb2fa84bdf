//! Health records, work leases, webhooks, the outbox and ephemeral records of a SqliteStore.
#![allow(unused_variables)]

use std::time::{Duration, SystemTime};

use forcelink_auth::error::StoreError;
use forcelink_auth::store::ConnectionId;

use crate::ephemeral::EphemeralKind;
use crate::health::{ConnectionHealth, HealthWrite};
use crate::outbox::{Delivery, DeliveryCounts, DeliveryFilter, DeliveryOutcome, NewDelivery, WebhookRecord};

use super::SqliteStore;

fn not_yet(what: &str) -> StoreError {
    StoreError::Unavailable(format!("{what} is not available in this store yet"))
}

impl SqliteStore {
    pub(super) async fn ops_write_health(
        &self,
        health: &ConnectionHealth,
        expected: Option<u64>,
        deliveries: &[NewDelivery],
    ) -> Result<HealthWrite, StoreError> {
        Err(not_yet("write_health"))
    }

    pub(super) async fn ops_health(&self, name: &ConnectionId) -> Result<Option<ConnectionHealth>, StoreError> {
        Err(not_yet("health"))
    }

    pub(super) async fn ops_try_work_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        Err(not_yet("try_work_lease"))
    }

    pub(super) async fn ops_release_work_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        Err(not_yet("release_work_lease"))
    }

    pub(super) async fn ops_put_webhook(&self, hook: &WebhookRecord) -> Result<(), StoreError> {
        Err(not_yet("put_webhook"))
    }

    pub(super) async fn ops_webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        Err(not_yet("webhook"))
    }

    pub(super) async fn ops_delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        Err(not_yet("delete_webhook"))
    }

    pub(super) async fn ops_enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> Result<usize, StoreError> {
        Err(not_yet("enqueue_deliveries"))
    }

    pub(super) async fn ops_claim_deliveries(
        &self,
        holder: &str,
        now: SystemTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Delivery>, StoreError> {
        Err(not_yet("claim_deliveries"))
    }

    pub(super) async fn ops_finish_delivery(
        &self,
        seq: i64,
        holder: &str,
        outcome: &DeliveryOutcome,
    ) -> Result<bool, StoreError> {
        Err(not_yet("finish_delivery"))
    }

    pub(super) async fn ops_deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<Delivery>, StoreError> {
        Err(not_yet("deliveries"))
    }

    pub(super) async fn ops_delivery_counts(&self, target: &str) -> Result<DeliveryCounts, StoreError> {
        Err(not_yet("delivery_counts"))
    }

    pub(super) async fn ops_retry_delivery(&self, seq: i64) -> Result<bool, StoreError> {
        Err(not_yet("retry_delivery"))
    }

    pub(super) async fn ops_put_ephemeral(
        &self,
        kind: EphemeralKind,
        key: &str,
        value: &[u8],
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        Err(not_yet("put_ephemeral"))
    }

    pub(super) async fn ops_ephemeral(&self, kind: EphemeralKind, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Err(not_yet("ephemeral"))
    }

    pub(super) async fn ops_take_ephemeral(
        &self,
        kind: EphemeralKind,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Err(not_yet("take_ephemeral"))
    }

    pub(super) async fn ops_delete_ephemeral(&self, kind: EphemeralKind, key: &str) -> Result<bool, StoreError> {
        Err(not_yet("delete_ephemeral"))
    }

    pub(super) async fn ops_healths(&self) -> Result<Vec<ConnectionHealth>, StoreError> {
        Err(not_yet("healths"))
    }

    pub(super) async fn ops_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        Err(not_yet("webhooks"))
    }

    pub(super) async fn ops_purge_deliveries(&self, before: SystemTime) -> Result<u64, StoreError> {
        Err(not_yet("purge_deliveries"))
    }
}
