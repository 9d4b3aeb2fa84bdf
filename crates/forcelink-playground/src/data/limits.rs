//! `GET /limits`: every limit a developer org lists (the names and maxima of the recorded
//! `rest/limits_full` answer, in its order), with consumption that follows what the playground
//! was asked to do:
//!
//! | limit | consumed by |
//! |---|---|
//! | `DailyApiRequests` | every REST call (its maximum is the seed's / control API's setting) |
//! | `DailyBulkV2QueryJobs` | each Bulk API 2.0 query job created |
//! | `DailyBulkApiBatches` | each ingest job processed: one per 10,000 rows started (UNCONFIRMED unit) |
//! | `DailyBulkV2QueryFileStorageMB` | the bytes of query results served, in whole MB rounded up |
//! | `DataStorageMB` | 2 KB per record of Account, Contact, Lead, Opportunity, Case and custom objects |
//! | `FileStorageMB` | the bytes of every file version (ContentVersion) |
//! | `PermissionSets` (and its `CreateCustom`) | permission sets not owned by a profile |
//!
//! Daily counts restart each playground-time UTC day, hourly ones each hour (Salesforce's windows
//! roll; UNCONFIRMED-free simplification). Remaining never goes below 0.

use serde_json::{Map, Value, json};

use super::request::{Ctx, SfError};
use crate::state::Shared;

/// A Bulk API 2.0 ingest batch, for `DailyBulkApiBatches`: Salesforce splits ingest data into
/// internal batches of 10,000 records.
pub(crate) const INGEST_BATCH_ROWS: u64 = 10_000;
/// The private counter behind `DailyBulkV2QueryFileStorageMB`.
pub(crate) const QUERY_RESULT_BYTES: &str = "DailyBulkV2QueryFileStorageBytes";
/// Storage Salesforce counts per record of most objects.
const RECORD_KB: u64 = 2;
const MB: u64 = 1024 * 1024;

/// Name and maximum of every limit, in the recorded answer's order (`DailyApiRequests`' maximum
/// is the org setting, filled in at run time).
const LIMITS: &[(&str, u64)] = &[
    ("ActiveScratchOrgs", 3),
    ("AnalyticsExternalDataSizeMB", 40_960),
    ("ConcurrentAsyncGetReportInstances", 200),
    ("ConcurrentEinsteinDataInsightsStoryCreation", 5),
    ("ConcurrentEinsteinDiscoveryStoryCreation", 2),
    ("ConcurrentSyncReportRuns", 20),
    ("DailyAnalyticsDataflowJobExecutions", 60),
    ("DailyAnalyticsUploadedFilesSizeMB", 51_200),
    ("DailyApiRequests", 0),
    ("DailyAsyncApexExecutions", 250_000),
    ("DailyAsyncApexTests", 540),
    ("DailyBulkApiBatches", 15_000),
    ("DailyBulkV2QueryFileStorageMB", 976_562),
    ("DailyBulkV2QueryJobs", 10_000),
    ("DailyDeliveredPlatformEvents", 10_000),
    ("DailyDurableGenericStreamingApiEvents", 10_000),
    ("DailyDurableStreamingApiEvents", 10_000),
    ("DailyEinsteinDataInsightsStoryCreation", 1_000),
    ("DailyEinsteinDiscoveryOptimizationJobRuns", 25),
    ("DailyEinsteinDiscoveryPredictAPICalls", 50_000),
    ("DailyEinsteinDiscoveryPredictionsByCDC", 500_000),
    ("DailyEinsteinDiscoveryStoryCreation", 100),
    ("DailyFunctionsApiCallLimit", 50_000),
    ("DailyGenericStreamingApiEvents", 10_000),
    ("DailyScratchOrgs", 6),
    ("DailyStandardVolumePlatformEvents", 10_000),
    ("DailyStreamingApiEvents", 10_000),
    ("DailyWorkflowEmails", 405),
    ("DataStorageMB", 5),
    ("DurableStreamingApiConcurrentClients", 20),
    ("FileStorageMB", 20),
    ("HourlyAsyncReportRuns", 1_200),
    ("HourlyDashboardRefreshes", 200),
    ("HourlyDashboardResults", 5_000),
    ("HourlyDashboardStatuses", 999_999_999),
    ("HourlyLongTermIdMapping", 100_000),
    ("HourlyManagedContentPublicRequests", 50_000),
    ("HourlyODataCallout", 1_000),
    ("HourlyPublishedPlatformEvents", 50_000),
    ("HourlyPublishedStandardVolumePlatformEvents", 1_000),
    ("HourlyShortTermIdMapping", 100_000),
    ("HourlySyncReportRuns", 500),
    ("HourlyTimeBasedWorkflow", 50),
    ("MassEmail", 10),
    ("MonthlyEinsteinDiscoveryStoryCreation", 500),
    ("Package2VersionCreates", 6),
    ("Package2VersionCreatesWithoutValidation", 500),
    ("PrivateConnectOutboundCalloutHourlyLimitMB", 0),
    ("PublishCallbackUsageInApex", 5_242_880),
    ("SingleEmail", 15),
    ("StreamingApiConcurrentClients", 20),
];

fn data_storage_kb(ctx: &Ctx<'_>) -> Result<u64, SfError> {
    let mut records = 0u64;
    for (i, o) in ctx.db.schema.objects.iter().enumerate() {
        if o.custom || matches!(o.name.as_str(), "Account" | "Contact" | "Lead" | "Opportunity" | "Case") {
            records += ctx.db.count(i, false)?.max(0) as u64;
        }
    }
    Ok(records * RECORD_KB)
}

fn sum_of(ctx: &Ctx<'_>, object: &str, sql_tail: &str) -> Result<u64, SfError> {
    let Some(o) = ctx.db.schema.get(object) else { return Ok(0) };
    let n: i64 =
        ctx.db.conn.query_row(&format!("SELECT {sql_tail} FROM {} WHERE \"IsDeleted\" = 0", o.table()), [], |r| {
            r.get::<_, Option<i64>>(0).map(Option::unwrap_or_default)
        })?;
    Ok(n.max(0) as u64)
}

fn mb_up(bytes: u64) -> u64 {
    bytes.div_ceil(MB)
}

/// The `/limits` body.
pub(crate) fn limits(pg: &Shared, ctx: &Ctx<'_>) -> Result<Value, SfError> {
    let now = ctx.now;
    let data = &pg.data;
    let api_max = pg.rt().settings.daily_api_requests;
    let file_bytes = sum_of(ctx, "ContentVersion", "SUM(\"ContentSize\")")?;
    let custom_sets = sum_of(ctx, "PermissionSet", "SUM(CASE WHEN \"IsOwnedByProfile\" = 0 THEN 1 ELSE 0 END)")?;
    let lim = |max: u64, used: u64| json!({"Max": max, "Remaining": max.saturating_sub(used)});
    let mut m = Map::new();
    for &(name, max) in LIMITS {
        let (max, used) = match name {
            "DailyApiRequests" => (api_max, data.used(now)),
            "DailyBulkV2QueryJobs" | "DailyBulkApiBatches" => (max, data.consumed(now, name)),
            "DailyBulkV2QueryFileStorageMB" => (max, mb_up(data.consumed(now, QUERY_RESULT_BYTES))),
            "DataStorageMB" => (max, data_storage_kb(ctx)?.div_ceil(1024)),
            "FileStorageMB" => (max, mb_up(file_bytes)),
            _ => (max, 0),
        };
        m.insert(name.into(), lim(max, used));
        // The one nested entry, where the recorded answer has it.
        if name == "Package2VersionCreatesWithoutValidation" {
            let mut perm = lim(1500, custom_sets);
            perm["CreateCustom"] = lim(1000, custom_sets);
            m.insert("PermissionSets".into(), perm);
        }
    }
    Ok(Value::Object(m))
}
