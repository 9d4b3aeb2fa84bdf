//! Waiting for a job: [`PollPolicy`] and [`Bulk::wait`], polling on a growing interval (a
//! [`Backoff`] without jitter) on the bulk handle's clock.

use std::time::Duration;

use forcelink_auth::backoff::{Backoff, Jitter};

use super::{
    Bulk, BulkError, DEFAULT_POLL_INITIAL, DEFAULT_POLL_MAX, DEFAULT_POLL_TIMEOUT, JobInfo, JobKind, JobState, Progress,
};

/// How [`Bulk::wait`] polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// First wait between two polls. Defaults to [`DEFAULT_POLL_INITIAL`].
    pub initial: Duration,
    /// Longest wait between two polls (the wait doubles up to it). Defaults to [`DEFAULT_POLL_MAX`].
    pub max: Duration,
    /// How long to poll before [`BulkError::Timeout`]. Defaults to [`DEFAULT_POLL_TIMEOUT`].
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self { initial: DEFAULT_POLL_INITIAL, max: DEFAULT_POLL_MAX, timeout: DEFAULT_POLL_TIMEOUT }
    }
}

impl PollPolicy {
    /// The polls as a [`Backoff`]: a growing interval without jitter (one client polls its own
    /// job; nothing to spread), no retry limit, `timeout` as the budget.
    pub fn schedule(&self) -> Backoff {
        Backoff {
            jitter: Jitter::None,
            max_retries: None,
            budget: Some(self.timeout),
            ..Backoff::exponential(self.initial, self.max)
        }
    }
}

impl Bulk {
    /// Polls until the job is complete, with exponential backoff; calls `progress` after each
    /// poll. `Failed` and `Aborted` jobs are errors; running out of
    /// [`PollPolicy::timeout`] is [`BulkError::Timeout`] (the job goes on).
    pub async fn wait(
        &self,
        kind: JobKind,
        id: &str,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<JobInfo, BulkError> {
        let mut polls = self.options.poll.schedule().start(self.clock.clone());
        loop {
            let info = self.job_info(kind, id).await?;
            progress(&Progress::of(&info));
            match info.state {
                JobState::JobComplete => return Ok(info),
                JobState::Failed => {
                    return Err(BulkError::JobFailed {
                        kind,
                        job_id: info.id,
                        message: info.error_message.unwrap_or_else(|| "no reason given".to_owned()),
                    });
                }
                JobState::Aborted => return Err(BulkError::JobAborted { kind, job_id: info.id }),
                _ => {}
            }
            if polls.wait(None).await.is_err() {
                let waited = polls.elapsed();
                return Err(BulkError::Timeout { kind, job_id: info.id, state: info.state, waited });
            }
        }
    }
}
