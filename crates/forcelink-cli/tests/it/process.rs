//! Runs the `forcelink` binary as a child process.
//!
//! A reader thread per output stream turns the pipes into channel messages, so every wait is a
//! `recv_timeout` bounded by [`WAIT_TIMEOUT`]: a hung binary fails the test instead of hanging
//! it, and nothing waits by sleeping. [`Forcelink`] kills the child when dropped, so a failed
//! assertion never leaves a playground running.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// Longest wait for the binary to become ready, or to exit, or to close its output.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// When the binary counts as ready, judged from its standard output.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// A line equal to this text (the human summary ends with `ready`).
    Line(&'static str),
    /// The output so far is one complete JSON document (`--json`).
    JsonDocument,
}

impl Until {
    fn reached(self, lines: &[String]) -> bool {
        match self {
            Until::Line(text) => lines.last().is_some_and(|l| l == text),
            Until::JsonDocument => {
                lines.last().is_some_and(|l| l.trim() == "}")
                    && serde_json::from_str::<Value>(&lines.join("\n")).is_ok()
            }
        }
    }
}

/// What the stdout reader reports.
#[derive(Debug)]
enum Stdout {
    /// The [`Until`] condition held after these lines; more may follow.
    Ready(Vec<String>),
    /// End of output, with every line not yet reported.
    Closed(Vec<String>),
}

/// A `forcelink` child process, killed on drop.
#[derive(Debug)]
pub struct Forcelink {
    child: Child,
    stdout: Receiver<Stdout>,
    /// Everything written to stderr so far; shown when something goes wrong.
    stderr: Arc<Mutex<String>>,
    stderr_closed: Receiver<()>,
}

/// How a run that was expected to fail ended.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Forcelink {
    /// Starts `forcelink ARGS…`; [`Forcelink::ready`] waits for `until`.
    pub fn spawn<I, S>(args: I, until: Until) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = Command::new(env!("CARGO_BIN_EXE_forcelink"))
            .args(args)
            // Settings the binary would otherwise take from the environment of the test run.
            .env_remove("FORCELINK_PLAYGROUND_KEY_DIR")
            .env_remove("FORCELINK_PLAYGROUND_CONTROL_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the forcelink binary");
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");

        let (stdout_tx, stdout) = mpsc::channel();
        std::thread::spawn(move || read_stdout(out, until, &stdout_tx));

        let stderr = Arc::new(Mutex::new(String::new()));
        let (closed_tx, stderr_closed) = mpsc::channel();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(err);
            let mut chunk = String::new();
            while reader.read_line(&mut chunk).is_ok_and(|n| n > 0) {
                sink.lock().expect("stderr buffer").push_str(&chunk);
                chunk.clear();
            }
            let _ = closed_tx.send(());
        });
        Self { child, stdout, stderr, stderr_closed }
    }

    fn stderr_so_far(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    /// Waits until the binary is ready and returns its standard output up to that point.
    /// Panics, with its output, if it exits first or takes longer than [`WAIT_TIMEOUT`].
    pub fn ready(&mut self) -> Vec<String> {
        match self.stdout.recv_timeout(WAIT_TIMEOUT) {
            Ok(Stdout::Ready(lines)) => lines,
            Ok(Stdout::Closed(lines)) => {
                // Stdout closed: the process is exiting, so this wait is short.
                let status = self.child.wait().expect("wait for forcelink");
                let _ = self.stderr_closed.recv_timeout(WAIT_TIMEOUT);
                panic!(
                    "forcelink exited ({status}) before it was ready\n--- stdout\n{}\n--- stderr\n{}",
                    lines.join("\n"),
                    self.stderr_so_far()
                );
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("forcelink was not ready within {WAIT_TIMEOUT:?}\n--- stderr\n{}", self.stderr_so_far())
            }
            Err(RecvTimeoutError::Disconnected) => panic!("the stdout reader stopped"),
        }
    }

    /// Kills the process and returns the standard output it wrote after becoming ready.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        match self.stdout.recv_timeout(WAIT_TIMEOUT) {
            Ok(Stdout::Closed(rest)) => rest,
            other => panic!("expected the end of stdout after kill, got {other:?}"),
        }
    }

    /// Waits for a run that must fail at start-up to exit, and returns what it printed.
    pub fn expect_exit(mut self) -> Exited {
        let stdout = match self.stdout.recv_timeout(WAIT_TIMEOUT) {
            Ok(Stdout::Closed(lines)) => lines.join("\n"),
            Ok(Stdout::Ready(lines)) => panic!(
                "forcelink started but was expected to exit\n--- stdout\n{}\n--- stderr\n{}",
                lines.join("\n"),
                self.stderr_so_far()
            ),
            Err(e) => {
                panic!("forcelink did not exit within {WAIT_TIMEOUT:?} ({e})\n--- stderr\n{}", self.stderr_so_far())
            }
        };
        self.stderr_closed.recv_timeout(WAIT_TIMEOUT).expect("stderr closes when forcelink exits");
        let status = self.child.wait().expect("wait for forcelink");
        Exited { status, stdout, stderr: self.stderr_so_far() }
    }
}

impl Drop for Forcelink {
    fn drop(&mut self) {
        // Also runs when a test panics, so no playground outlives its test.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_stdout(out: ChildStdout, until: Until, tx: &Sender<Stdout>) {
    let mut lines = Vec::new();
    let mut reported = false;
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        lines.push(line);
        if !reported && until.reached(&lines) {
            reported = true;
            let _ = tx.send(Stdout::Ready(std::mem::take(&mut lines)));
        }
    }
    let _ = tx.send(Stdout::Closed(lines));
}

/// Files of one playground run inside a test's temporary directory.
#[derive(Debug)]
pub struct RunDir {
    pub dir: tempfile::TempDir,
}

impl RunDir {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("temporary directory") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn info_file(&self) -> PathBuf {
        self.path("info.json")
    }

    pub fn key_dir(&self) -> PathBuf {
        self.path("keys")
    }

    /// `playground --port 0 --instance-port 0 --info-file … --key-dir …` plus `extra`.
    pub fn playground_args(&self, extra: &[&str]) -> Vec<OsString> {
        let mut args: Vec<OsString> =
            ["playground", "--port", "0", "--instance-port", "0", "--pubsub-port", "0"].map(OsString::from).into();
        args.push("--info-file".into());
        args.push(self.info_file().into());
        args.push("--key-dir".into());
        args.push(self.key_dir().into());
        args.extend(extra.iter().map(OsString::from));
        args
    }

    /// Writes `text` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).expect("write a test file");
        path
    }
}

/// The info file as JSON.
pub fn read_info(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()))
}

/// A string field of a JSON object, or a panic naming it.
pub fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_else(|| panic!("{key} is not a string in {value}"))
}

/// Posts a form to a token endpoint; returns the status and the JSON body.
pub async fn post_token(client: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (reqwest::StatusCode, Value) {
    let response = client.post(url).form(form).send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status();
    let body = response.text().await.expect("read the token response");
    let json =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url} answered {status} with non-JSON ({e}): {body}"));
    (status, json)
}
