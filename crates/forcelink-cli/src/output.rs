//! The only place that prints. Human text on stdout, errors on stderr.

#![allow(clippy::print_stdout, clippy::print_stderr)] // this module is the CLI's printer

use std::io::Write;
use std::path::Path;

use forcelink_playground::PlaygroundInfo;

pub(crate) fn error(message: &str) {
    eprintln!("error: {message}");
}

pub(crate) fn note(message: &str) {
    eprintln!("{message}");
}

pub(crate) fn json(value: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    println!("{text}");
    let _ = std::io::stdout().flush();
}

/// Buffered standard output for commands that stream their output (records as they arrive).
pub(crate) type StdoutWriter = std::io::BufWriter<std::io::Stdout>;

pub(crate) fn stdout_writer() -> StdoutWriter {
    std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout())
}

pub(crate) fn playground_summary(info: &PlaygroundInfo, info_file: Option<&Path>) {
    let mut out = String::new();
    out.push_str("forcelink playground is running (an offline Salesforce-compatible org)\n\n");
    out.push_str(&format!("  login URL       {}\n", info.login_url));
    out.push_str(&format!("  instance URL    {}   (My Domain: client credentials, API calls)\n", info.instance_url));
    out.push_str(&format!("  control API     {}   (Authorization: Bearer <control key>)\n", info.control_url));
    out.push_str(&format!("  Pub/Sub API     {}   (gRPC: change events, platform events)\n", info.pubsub_endpoint));
    out.push_str(&format!("  control key     {}\n\n", info.control_key));
    out.push_str("  connected app (the seed's first; the built-in one enables every flow)\n");
    out.push_str(&format!("    client id     {}\n", info.client.client_id));
    out.push_str(&format!("    client secret {}\n", info.client.client_secret));
    out.push_str("  user (the seed's first; built-in: System Administrator, Run As user, pre-approved for JWT)\n");
    out.push_str(&format!("    username      {}\n", info.user.username));
    out.push_str(&format!("    password      {}\n", info.user.password));
    out.push_str(&format!("    sec. token    {}\n", info.user.security_token));
    out.push_str("  JWT bearer\n");
    out.push_str(&format!("    private key   {}\n", info.jwt.private_key_path));
    out.push_str(&format!("    certificate   {}\n", info.jwt.certificate_path));
    if let Some(ca) = &info.ca_path {
        out.push_str(&format!("  TLS CA          {ca}   (trust this to connect over https)\n"));
    }
    if let Some(p) = info_file {
        out.push_str(&format!("\n  info file       {}\n", p.display()));
    }
    out.push_str(&format!(
        "\nTry it (client credentials, when the app enables them):\n  curl -s -X POST {}/services/oauth2/token \\\n    -d grant_type=client_credentials -d client_id={} -d client_secret={}\n",
        info.instance_url, info.client.client_id, info.client.client_secret
    ));
    out.push_str("\nready\n");
    print!("{out}");
    let _ = std::io::stdout().flush();
}

/// A command's result: `{"status": 0, "result": …, "warnings": […]}` with `--json`, else its
/// human text on stdout and warnings on stderr.
pub(crate) fn outcome(json_mode: bool, outcome: crate::outcome::Outcome) {
    if outcome.streamed {
        for w in &outcome.warnings {
            eprintln!("warning: {w}");
        }
    } else if json_mode {
        let mut doc = serde_json::json!({ "status": outcome.exit, "result": outcome.result });
        if !outcome.warnings.is_empty() {
            doc["warnings"] = serde_json::json!(outcome.warnings);
        }
        json(&doc);
    } else {
        for w in &outcome.warnings {
            eprintln!("warning: {w}");
        }
        print!("{}", outcome.human);
        let _ = std::io::stdout().flush();
    }
}

/// A failure: `{"status": N, "error": {kind, message, fix}}` on stdout with `--json`, else
/// `error: …` and `fix: …` on stderr.
pub(crate) fn failure(json_mode: bool, f: &crate::failure::Failure) {
    if json_mode {
        json(&serde_json::json!({ "status": f.kind.exit_code(), "error": f }));
    } else {
        eprintln!("error: {}", f.message);
        if let Some(fix) = &f.fix {
            eprintln!("  fix: {fix}");
        }
    }
}

/// Columns padded to their widest cell, two spaces apart, without borders; the first row is
/// the header. Trailing blanks are cut so that lines end with their last value.
pub(crate) fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    for row in rows {
        table.add_row(row.iter().map(String::as_str));
    }
    // Without borders, the padding is what separates columns: none before the first, two
    // spaces between two columns.
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((u16::from(i > 0), 1));
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Asks on the terminal; returns the line without its newline.
pub(crate) fn prompt(question: &str) -> std::io::Result<String> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// A yes/no question on the terminal (default no).
pub(crate) fn confirm(question: &str) -> Result<bool, crate::failure::Failure> {
    let answer = prompt(&format!("{question} [y/N] "))
        .map_err(|e| crate::failure::Failure::usage(format!("reading the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Tries to open `url` in the desktop's browser; silent when there is none (the URL is
/// printed anyway).
pub(crate) fn open_browser(url: &str) {
    let _ = open::that_detached(url);
}

// ---- Progress of long operations (bulk jobs), on stderr ----

/// Progress on stderr: a bar (records and job state) on a terminal, else one plain line per
/// change, so logs of scripted runs stay readable.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    last: String,
}

impl Progress {
    pub(crate) fn new() -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        Self { bar, last: String::new() }
    }

    /// Shows `message` (the bar's text, or a line when it differs from the last one).
    pub(crate) fn show(&mut self, message: &str) {
        if message == self.last {
            return;
        }
        self.last = message.to_owned();
        match &self.bar {
            Some(bar) => bar.set_message(message.to_owned()),
            None => eprintln!("{message}"),
        }
    }

    /// A line that stays (job id, a finished phase) above the bar.
    pub(crate) fn line(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Bytes sent of a known total, as a bar on stderr when it is a terminal (nothing otherwise:
/// scripted runs get the result alone).
pub(crate) struct ByteProgress {
    bar: Option<indicatif::ProgressBar>,
}

impl ByteProgress {
    pub(crate) fn new() -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "[{elapsed_precise}] {bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Self { bar }
    }

    /// A callback moving the bar (`(sent, total)`), when there is a bar.
    pub(crate) fn hook(&self) -> Option<std::sync::Arc<dyn Fn(u64, u64) + Send + Sync>> {
        let bar = self.bar.clone()?;
        Some(std::sync::Arc::new(move |sent, total| {
            bar.set_length(total);
            bar.set_position(sent);
        }))
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Standard output for data a command streams (CSV rows of an export), unbuffered here: the
/// writer flushes at the end.
pub(crate) fn data_out() -> tokio::io::Stdout {
    tokio::io::stdout()
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn tables_pad_columns_two_spaces_apart_and_cut_trailing_blanks() {
        let rows = [
            ["NAME".to_owned(), "METHOD".to_owned(), "SIGNED IN".to_owned()],
            ["a-long-name".to_owned(), "jwt".to_owned(), String::new()],
            ["b".to_owned(), String::new(), "yes".to_owned()],
        ];
        assert_eq!(table(&rows), "NAME         METHOD  SIGNED IN\na-long-name  jwt\nb                    yes\n");
    }
}
