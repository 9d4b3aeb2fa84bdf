//! What a successful command reports: [`Outcome`] (JSON result, human text, warnings, exit
//! code). Commands build one; `output` prints it. It sits apart from both so neither has to
//! name the other.

/// What a successful command reports.
#[derive(Debug, Default)]
pub struct Outcome {
    pub result: serde_json::Value,
    pub human: String,
    pub warnings: Vec<String>,
    /// Exit code; non-zero for reports that found problems (`doctor`).
    pub exit: u8,
    /// The command wrote its output to stdout itself, as it went (record streams).
    pub streamed: bool,
}

impl Outcome {
    pub fn new(result: serde_json::Value, human: impl Into<String>) -> Self {
        Self { result, human: human.into(), warnings: Vec::new(), exit: 0, streamed: false }
    }
    /// For commands that printed their output while it arrived.
    pub fn streamed() -> Self {
        Self { streamed: true, ..Self::default() }
    }
    pub fn warn(mut self, w: impl Into<String>) -> Self {
        self.warnings.push(w.into());
        self
    }
}
