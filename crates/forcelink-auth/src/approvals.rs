//! The approval budget: Salesforce keeps at most five approvals (refresh tokens) per user and
//! connected app, and a sixth silently revokes the oldest. forcelink counts them per (user,
//! client id), warns before a new one would evict another, and says which connection lost its
//! refresh token.

use std::sync::Arc;

use crate::error::AuthError;
use crate::store::{Approval, ConnectionId, TokenStore};

/// Salesforce's limit of approvals per user per connected app.
pub const MAX_APPROVALS_PER_USER_AND_APP: usize = 5;

/// What a new approval of (user, app) will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalOutlook {
    /// Room left: `used` of five are taken.
    Fits {
        /// Approvals of this user and app held by other connections.
        used: usize,
    },
    /// Five are taken: approving again revokes `oldest`.
    WouldEvict {
        /// The approval Salesforce will revoke: the oldest one of another connection.
        oldest: Approval,
    },
}

/// Counts approvals per (user, client id) in a [`TokenStore`] and warns before one is evicted.
#[derive(Debug, Clone)]
pub struct ApprovalBudget {
    store: Arc<dyn TokenStore>,
}

impl ApprovalBudget {
    /// A budget kept in `store`'s approval ledger.
    pub fn new(store: Arc<dyn TokenStore>) -> Self {
        Self { store }
    }

    /// Call before sending a user to approve the app. Logs a warning when an approval would be
    /// evicted. A connection re-authorizing itself does not count twice.
    pub async fn before_approval(
        &self,
        user: &str,
        client_id: &str,
        connection: &ConnectionId,
    ) -> Result<ApprovalOutlook, AuthError> {
        let approvals = self.store.approvals(user, client_id).await?;
        let others: Vec<&Approval> = approvals.iter().filter(|a| &a.connection != connection).collect();
        if others.len() >= MAX_APPROVALS_PER_USER_AND_APP {
            let oldest = others[0].clone();
            tracing::warn!(
                user,
                client_id,
                evicted_connection = %oldest.connection,
                "this approval is the sixth for the user and app: Salesforce will revoke the oldest one's refresh token"
            );
            return Ok(ApprovalOutlook::WouldEvict { oldest });
        }
        Ok(ApprovalOutlook::Fits { used: others.len() })
    }

    /// Records a completed approval. Returns the approvals Salesforce has revoked because of it
    /// (oldest beyond five), which are removed from the ledger.
    pub async fn record(&self, approval: Approval) -> Result<Vec<Approval>, AuthError> {
        // A connection that re-authorizes replaces its own earlier approval in the ledger
        // (Salesforce still counts the old token until it is revoked; revoke it when replacing).
        self.store.remove_approval(&approval.user, &approval.client_id, &approval.connection).await?;
        let all = self.store.record_approval(&approval).await?;
        let excess = all.len().saturating_sub(MAX_APPROVALS_PER_USER_AND_APP);
        let evicted: Vec<Approval> = all.into_iter().take(excess).collect();
        for e in &evicted {
            self.store.remove_approval(&e.user, &e.client_id, &e.connection).await?;
            tracing::warn!(
                user = %e.user,
                client_id = %e.client_id,
                connection = %e.connection,
                "approval evicted: that connection's refresh token no longer works; authorize it again"
            );
        }
        Ok(evicted)
    }

    /// Forgets a connection's approval (after revoking its refresh token).
    pub async fn forget(&self, user: &str, client_id: &str, connection: &ConnectionId) -> Result<(), AuthError> {
        Ok(self.store.remove_approval(user, client_id, connection).await?)
    }
}
