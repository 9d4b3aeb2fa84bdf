//! `forcelink bulk import|upsert|delete|export|status|results|abort`: Bulk API 2.0 jobs with
//! progress on stderr, results written to files, and resumption by job id.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use forcelink_client::bulk::{
    Bulk, BulkError, IngestJob, JobInfo, JobKind, JobState, Operation, PollPolicy, Progress, ResultSet,
};
use forcelink_client::{ApiVersion, Client};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{open_connection, token_cache};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::output;
use crate::settings::Settings;

/// How long `--wait` polls by default before leaving the job to be resumed: 1 hour.
const DEFAULT_WAIT_SECONDS: u64 = 60 * 60;
/// Default upload size in MiB (see forcelink_client::bulk::DEFAULT_MAX_UPLOAD_BYTES).
const DEFAULT_UPLOAD_MIB: usize = forcelink_client::bulk::DEFAULT_MAX_UPLOAD_BYTES / (1024 * 1024);

#[derive(Debug, clap::Subcommand)]
pub enum BulkCommand {
    /// Load a CSV file (header row first) into an object: insert, update, upsert, delete or
    /// hardDelete. Waits for the job and reports processed and failed records.
    Import(ImportArgs),
    /// `import --operation upsert`: insert or update by an external id field.
    Upsert(ImportArgs),
    /// `import --operation delete` (`--hard`: hardDelete): the file needs an `Id` column.
    Delete {
        #[command(flatten)]
        args: ImportArgs,
        /// Delete without the recycle bin (hardDelete).
        #[arg(long)]
        hard: bool,
    },
    /// Run a SOQL query as a bulk job and write every row as CSV.
    Export {
        /// The SOQL query.
        soql: String,
        /// Include deleted and archived records (queryAll).
        #[arg(long)]
        all: bool,
        /// Write the CSV here; standard output when omitted.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Records per result page (maxRecords); Salesforce chooses when omitted.
        #[arg(long, value_name = "N")]
        page_records: Option<u64>,
        /// Create the job, print its id and return (fetch later with `bulk results JOB`).
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// A job's state and counters (ingest or query).
    Status {
        /// Job id.
        job: String,
        /// Poll until the job is complete (resume a job whose process ended).
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Write a completed job's results: for ingest, `JOB-successful.csv`, `JOB-failed.csv`
    /// and `JOB-unprocessed.csv`; for a query, `JOB.csv`.
    Results {
        /// Job id.
        job: String,
        /// Directory for the files.
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Poll until the job is complete first.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Abort a job that is not finished.
    Abort {
        /// Job id.
        job: String,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Connection name (default: FORCELINK_CONNECTION, then the configured default).
    #[arg(long, short = 'c', value_name = "NAME")]
    connection: Option<String>,
    /// Longest wait for a job, in seconds; the job goes on after it and can be resumed.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_WAIT_SECONDS)]
    timeout: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The sObject, e.g. Account.
    #[arg(long)]
    object: String,
    /// The CSV file (header row of field names first); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    file: PathBuf,
    /// insert, update, upsert, delete or hardDelete.
    #[arg(long, default_value = "insert")]
    operation: String,
    /// The external id field of an upsert.
    #[arg(long, value_name = "FIELD")]
    external_id: Option<String>,
    /// COMMA, TAB, PIPE, SEMICOLON, CARET or BACKQUOTE.
    #[arg(long, value_name = "NAME")]
    delimiter: Option<String>,
    /// LF or CRLF.
    #[arg(long, value_name = "LF|CRLF")]
    line_ending: Option<String>,
    /// Largest upload in MiB; larger files are sent in several uploads.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_UPLOAD_MIB)]
    upload_mib: usize,
    /// Largest upload in bytes (overrides --upload-mib; for small test files).
    #[arg(long, value_name = "BYTES", hide = true)]
    upload_bytes: Option<usize>,
    /// Write the results (successful, failed, unprocessed) to this directory when done.
    #[arg(long, value_name = "DIR")]
    results_dir: Option<PathBuf>,
    /// Submit the job, print its id and return.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    common: CommonArgs,
}

pub async fn run(settings: &Settings, command: BulkCommand) -> Result<Outcome, Failure> {
    match command {
        BulkCommand::Import(args) => {
            let op = parse_operation(&args.operation)?;
            import(settings, args, op).await
        }
        BulkCommand::Upsert(args) => import(settings, args, Operation::Upsert).await,
        BulkCommand::Delete { args, hard } => {
            import(settings, args, if hard { Operation::HardDelete } else { Operation::Delete }).await
        }
        BulkCommand::Export { soql, all, out, page_records, no_wait, common } => {
            export(settings, &soql, all, out.as_deref(), page_records, no_wait, &common).await
        }
        BulkCommand::Status { job, wait, common } => status(settings, &job, wait, &common).await,
        BulkCommand::Results { job, dir, wait, common } => results(settings, &job, &dir, wait, &common).await,
        BulkCommand::Abort { job, common } => abort(settings, &job, &common).await,
    }
}

fn parse_operation(text: &str) -> Result<Operation, Failure> {
    match text.parse::<Operation>() {
        Ok(Operation::Query | Operation::QueryAll) => {
            Err(Failure::usage(format!("{text} is not an import operation")).with_fix("use `forcelink bulk export`"))
        }
        Ok(op) => Ok(op),
        Err(e) => Err(Failure::usage(e.to_string())),
    }
}

/// The bulk handle of a connection: its token cache, API version and the settings' URL policy.
async fn open_bulk(settings: &Settings, common: &CommonArgs) -> Result<Bulk, Failure> {
    let name = settings.connection_name(common.connection.as_deref())?;
    let opened = open_connection(settings, &name).await?;
    let cache: Arc<dyn forcelink_auth::TokenProvider> = Arc::new(token_cache(settings, &opened)?);
    let version = ApiVersion::new(&opened.connection.api_version).map_err(|e| {
        Failure::config(format!("connection {name}: {e}")).with_fix("set api_version to a version such as 64.0")
    })?;
    let client = Client::builder(cache.clone())
        .url_policy(settings.url_policy())
        .api_version(version)
        .build()
        .map_err(Failure::from_client)?;
    let poll = PollPolicy { timeout: Duration::from_secs(common.timeout), ..PollPolicy::default() };
    Ok(Bulk::new(client, cache).map_err(Failure::from_client)?.url_policy(settings.url_policy()).poll(poll))
}

/// A bulk error as a failure; when a job exists, the fix says how to go on with it.
fn failure(e: BulkError) -> Failure {
    let job = e.job_id().map(str::to_owned);
    let base = match e {
        BulkError::Client(c) => return Failure::from_client(c),
        BulkError::InJob { source, .. } => match *source {
            BulkError::Client(c) => Failure::from_client(c),
            other => return failure_in_job(failure(other), job),
        },
        BulkError::Input(_) | BulkError::Read(_) => Failure::usage(e.to_string()),
        BulkError::Timeout { ref job_id, .. } => {
            return Failure::failed(e.to_string()).with_fix(format!(
                "the job goes on: `forcelink bulk status {job_id} --wait`, then `forcelink bulk results {job_id}`"
            ));
        }
        BulkError::JobFailed { ref job_id, .. } => {
            let fix = format!("fix the file and import again; details: `forcelink bulk status {job_id}`");
            return Failure::failed(e.to_string()).with_fix(fix);
        }
        other => Failure::failed(other.to_string()),
    };
    failure_in_job(base, job)
}

fn failure_in_job(f: Failure, job: Option<String>) -> Failure {
    match job {
        Some(id) if f.fix.is_none() => {
            let message =
                if f.message.contains(&id) { f.message.clone() } else { format!("bulk job {id}: {}", f.message) };
            Failure { message, ..f }.with_fix(format!("see `forcelink bulk status {id}`"))
        }
        _ => f,
    }
}

fn describe(p: &Progress) -> String {
    match p.state {
        JobState::Open => format!(
            "job {}: uploaded {} records ({} uploads, {})",
            p.job_id,
            p.uploaded_records,
            p.uploads,
            human_bytes(p.uploaded_bytes)
        ),
        _ => format!("job {}: {} — {} records processed, {} failed", p.job_id, p.state, p.processed, p.failed),
    }
}

fn human_bytes(n: u64) -> String {
    if n >= 1024 * 1024 { format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0)) } else { format!("{n} bytes") }
}

async fn open_input(file: &Path) -> Result<Box<dyn AsyncRead + Unpin + Send>, Failure> {
    if file == Path::new("-") {
        return Ok(Box::new(tokio::io::stdin()));
    }
    let f = tokio::fs::File::open(file)
        .await
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    Ok(Box::new(tokio::io::BufReader::with_capacity(256 * 1024, f)))
}

async fn import(settings: &Settings, args: ImportArgs, operation: Operation) -> Result<Outcome, Failure> {
    let mut job = IngestJob::new(&args.object, operation);
    match (operation, &args.external_id) {
        (Operation::Upsert, Some(f)) => job.external_id_field_name = Some(f.clone()),
        (Operation::Upsert, None) => {
            return Err(Failure::usage("an upsert needs --external-id FIELD"));
        }
        (_, Some(_)) => return Err(Failure::usage("--external-id is only used by upsert")),
        _ => {}
    }
    job.column_delimiter = args.delimiter.clone();
    job.line_ending = args.line_ending.clone();
    let upload = args.upload_bytes.unwrap_or(args.upload_mib.saturating_mul(1024 * 1024));
    let input = open_input(&args.file).await?;
    let bulk = open_bulk(settings, &args.common).await?.max_upload_bytes(upload);

    let mut progress = output::Progress::new();
    let created = bulk.create_ingest(&job).await.map_err(failure)?;
    let id = created.id.clone();
    progress.line(&format!("bulk ingest job {id} created ({operation} {})", args.object));
    let mut show = |p: &Progress| progress.show(&describe(p));
    let uploaded = match bulk.upload_csv(&id, input, &mut show).await {
        Ok(s) => s,
        Err(e) => {
            // An open job holding part of the file must never be processed.
            let _ = bulk.abort(JobKind::Ingest, &id).await;
            progress.finish();
            return Err(failure(BulkError::InJob { job_id: id, source: Box::new(e) }));
        }
    };
    let closed =
        bulk.close(&id).await.map_err(|e| failure(BulkError::InJob { job_id: id.clone(), source: Box::new(e) }))?;
    progress.line(&format!(
        "job {id}: {} records in {} uploads ({}); processing",
        uploaded.records,
        uploaded.uploads,
        human_bytes(uploaded.bytes)
    ));
    if args.no_wait {
        progress.finish();
        return Ok(Outcome::new(json!({ "job": closed, "uploaded": uploaded }), format!("{id}\n")));
    }
    let mut show = |p: &Progress| progress.show(&describe(p));
    let done = bulk.wait(JobKind::Ingest, &id, &mut show).await;
    progress.finish();
    let done = done.map_err(failure)?;
    let files = match &args.results_dir {
        Some(dir) => Some(write_ingest_results(&bulk, &id, dir).await?),
        None => None,
    };
    Ok(ingest_outcome(&done, Some(uploaded), files))
}

fn ingest_outcome(
    info: &JobInfo,
    uploaded: Option<forcelink_client::bulk::UploadSummary>,
    files: Option<serde_json::Value>,
) -> Outcome {
    let processed = info.number_records_processed.unwrap_or(0);
    let failed = info.number_records_failed.unwrap_or(0);
    let mut human = format!(
        "job {}: {} — {} records processed, {} succeeded, {} failed\n",
        info.id,
        info.state,
        processed,
        processed.saturating_sub(failed),
        failed
    );
    if let Some(files) = files.as_ref().and_then(|f| f.as_object()) {
        for (which, f) in files {
            human.push_str(&format!("  {which:<12} {} ({} records)\n", f["path"].as_str().unwrap_or(""), f["records"]));
        }
    }
    let mut result = json!({ "job": info, "uploaded": uploaded });
    if let Some(f) = files {
        result["results"] = f;
    }
    let mut outcome = Outcome::new(result, human);
    if failed > 0 {
        outcome = outcome.warn(format!(
            "{failed} records failed; their errors are in the failed results (`forcelink bulk results {}`)",
            info.id
        ));
        outcome.exit = 1;
    }
    outcome
}

async fn create_file(path: &Path) -> Result<tokio::io::BufWriter<tokio::fs::File>, Failure> {
    let f = tokio::fs::File::create(path)
        .await
        .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    Ok(tokio::io::BufWriter::with_capacity(256 * 1024, f))
}

async fn write_ingest_results(bulk: &Bulk, id: &str, dir: &Path) -> Result<serde_json::Value, Failure> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
    let mut files = serde_json::Map::new();
    for which in ResultSet::ALL {
        let path = dir.join(format!("{id}-{}.csv", which.name()));
        let mut out = create_file(&path).await?;
        let n = bulk.ingest_results(id, which, &mut out).await.map_err(failure)?;
        files.insert(which.name().to_owned(), json!({ "path": path.display().to_string(), "records": n }));
    }
    Ok(serde_json::Value::Object(files))
}

async fn write_query_results(bulk: &Bulk, id: &str, out: &mut (dyn AsyncWrite + Unpin + Send)) -> Result<u64, Failure> {
    let mut progress = output::Progress::new();
    let mut show = |p: &Progress| progress.show(&format!("job {id}: {} records written", p.processed));
    let n = bulk.query_results(id, out, &mut show).await;
    progress.finish();
    n.map_err(failure)
}

async fn export(
    settings: &Settings,
    soql: &str,
    all: bool,
    out: Option<&Path>,
    page_records: Option<u64>,
    no_wait: bool,
    common: &CommonArgs,
) -> Result<Outcome, Failure> {
    let bulk = open_bulk(settings, common).await?.page_records(page_records);
    let created = bulk.create_query(soql, all).await.map_err(failure)?;
    let id = created.id.clone();
    let mut progress = output::Progress::new();
    progress.line(&format!("bulk query job {id} created"));
    if no_wait {
        progress.finish();
        return Ok(Outcome::new(json!({ "job": created }), format!("{id}\n")));
    }
    let mut show = |p: &Progress| progress.show(&describe(p));
    let done = bulk.wait(JobKind::Query, &id, &mut show).await;
    progress.finish();
    let done = done.map_err(failure)?;
    let (records, path) = match out {
        Some(path) => {
            let mut file = create_file(path).await?;
            (write_query_results(&bulk, &id, &mut file).await?, Some(path.display().to_string()))
        }
        None => (write_query_results(&bulk, &id, &mut output::data_out()).await?, None),
    };
    let human = match &path {
        Some(p) => format!("job {id}: {records} records written to {p}\n"),
        // The rows went to stdout; the summary goes to stderr through a warning-free note.
        None => String::new(),
    };
    if path.is_none() {
        output::note(&format!("job {id}: done, {records} records written to standard output"));
    }
    Ok(Outcome::new(json!({ "job": done, "records": records, "out": path }), human))
}

async fn status(settings: &Settings, job: &str, wait: bool, common: &CommonArgs) -> Result<Outcome, Failure> {
    let bulk = open_bulk(settings, common).await?;
    let info = bulk.find_job(job).await.map_err(failure)?;
    let info = if wait && !info.state.is_terminal() {
        let mut progress = output::Progress::new();
        let mut show = |p: &Progress| progress.show(&describe(p));
        let done = bulk.wait(info.kind(), job, &mut show).await;
        progress.finish();
        match done {
            Ok(i) => i,
            // A failed or aborted job is a state to report, not a failure to fetch it.
            Err(BulkError::JobFailed { .. } | BulkError::JobAborted { .. }) => {
                bulk.job_info(info.kind(), job).await.map_err(failure)?
            }
            Err(e) => return Err(failure(e)),
        }
    } else {
        info
    };
    let mut human =
        format!("job {}: {} {} {}\n", info.id, info.kind(), info.operation, info.object.as_deref().unwrap_or(""));
    human.push_str(&format!("  state      {}\n", info.state));
    if let Some(n) = info.number_records_processed {
        human.push_str(&format!("  processed  {n}\n"));
    }
    if let Some(n) = info.number_records_failed {
        human.push_str(&format!("  failed     {n}\n"));
    }
    if let Some(m) = &info.error_message {
        human.push_str(&format!("  error      {m}\n"));
    }
    let mut outcome = Outcome::new(json!({ "job": info }), human);
    if matches!(info.state, JobState::Failed) {
        outcome.exit = 1;
    }
    Ok(outcome)
}

async fn results(
    settings: &Settings,
    job: &str,
    dir: &Path,
    wait: bool,
    common: &CommonArgs,
) -> Result<Outcome, Failure> {
    let bulk = open_bulk(settings, common).await?;
    let mut info = bulk.find_job(job).await.map_err(failure)?;
    if wait {
        let mut progress = output::Progress::new();
        let mut show = |p: &Progress| progress.show(&describe(p));
        let done = bulk.wait(info.kind(), job, &mut show).await;
        progress.finish();
        info = done.map_err(failure)?;
    }
    match info.kind() {
        JobKind::Ingest => {
            if !info.state.is_terminal() {
                return Err(Failure::failed(format!("job {job} is {}: its results are not ready", info.state))
                    .with_fix(format!("wait for it: `forcelink bulk results {job} --wait`")));
            }
            let files = write_ingest_results(&bulk, job, dir).await?;
            Ok(ingest_outcome(&info, None, Some(files)))
        }
        JobKind::Query => {
            if info.state != JobState::JobComplete {
                return Err(Failure::failed(format!("query job {job} is {}: no results", info.state))
                    .with_fix(format!("wait for it: `forcelink bulk results {job} --wait`")));
            }
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())))?;
            let path = dir.join(format!("{job}.csv"));
            let mut file = create_file(&path).await?;
            let n = write_query_results(&bulk, job, &mut file).await?;
            let shown = path.display().to_string();
            Ok(Outcome::new(
                json!({ "job": info, "records": n, "out": shown }),
                format!("job {job}: {n} records written to {shown}\n"),
            ))
        }
    }
}

async fn abort(settings: &Settings, job: &str, common: &CommonArgs) -> Result<Outcome, Failure> {
    let bulk = open_bulk(settings, common).await?;
    let info = bulk.find_job(job).await.map_err(failure)?;
    let aborted = bulk.abort(info.kind(), job).await.map_err(failure)?;
    Ok(Outcome::new(json!({ "job": aborted }), format!("job {job}: {}\n", aborted.state)))
}
