//! `POST /mcp`: an MCP server over the broker's connections, so an AI agent can query, describe
//! and change records and run the user-administration actions of the connections its API key
//! allows — without ever holding a secret or a token. The broker already renews each
//! connection's token once for every caller, scopes keys and audits; agents get the same.
//!
//! The transport is the official Rust SDK's (`rmcp`) streamable HTTP server in its stateless
//! mode: every POST carries one JSON-RPC message and gets a JSON answer, no `Mcp-Session-Id`, no
//! server-sent events, so any replica can answer any request and no stickiness is needed. The
//! route table's guard has authenticated the key (scope `mcp`) before the body is read; the
//! server built here for the request knows its [`Caller`].
//!
//! Every `tools/call` and `resources/read` goes through one gate, in this order: the key's
//! call budget ([`safety::CallBudget`], per minute), the arguments ([`args`]), the connection
//! (among the key's), writes (refused to read-only keys); then it runs ([`tools`]), its result
//! is redacted ([`safety`]) and it is audited (`mcp.<tool>`, connection, key, outcome).
//!
//! Parts: [`catalog`] (the tools: names, schemas, annotations), [`args`] (checked arguments),
//! [`tools`] (running them), [`resources`] (resources and prompts), [`safety`] (redaction and
//! call budgets).

mod args;
mod catalog;
mod resources;
mod safety;
mod tools;

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::response::Response;
use forcelink_store::{AuditAction, Scope};
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, ResourceContents, ResultType, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::access::Caller;
use crate::audit::NO_CONNECTION;
use crate::error::ErrorResponse;
use crate::state::BrokerState;
use args::{ArgError, Parsed};
pub(crate) use safety::CallBudget;
pub use safety::DEFAULT_MCP_CALLS_PER_MINUTE;

/// What the server tells an agent when it connects.
const INSTRUCTIONS: &str = "forcelink: Salesforce connections held by a broker. Call list_connections first; every other \
tool takes one of those names as `connection`. soql_query and sosl_search send your SOQL/SOSL as written; \
describe_sobject tells you field names and types before you query or change records. Tokens and secrets are never \
shown. Calls are rate-limited per API key and audited.";

/// `POST /mcp`: one JSON-RPC message through rmcp's stateless streamable HTTP service.
pub(crate) async fn endpoint(
    State(state): State<BrokerState>,
    Extension(caller): Extension<Caller>,
    Extension(budget): Extension<CallBudget>,
    request: Request,
) -> Response {
    let max_body = state.limits().max_body_bytes;
    let server = McpServer { state, caller, budget };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_sse_retry(None)
        // The Host check guards unauthenticated local servers against DNS rebinding; here every
        // request carries an API key a rebinding page cannot know.
        .disable_allowed_hosts()
        .with_max_request_body_bytes(max_body);
    let service =
        StreamableHttpService::new(move || Ok(server.clone()), Arc::new(NeverSessionManager::default()), config);
    match service.oneshot(request).await {
        Ok(response) => response.map(axum::body::Body::new),
        Err(never) => match never {},
    }
}

/// The MCP server for one request: the broker and who is calling.
#[derive(Debug, Clone)]
struct McpServer {
    state: BrokerState,
    caller: Caller,
    budget: CallBudget,
}

/// Why a call did not run, and what the audit log says of it.
enum Refusal {
    /// Over the key's budget; retry after this many seconds.
    RateLimited(u64),
    Invalid(ArgError),
    Forbidden(String),
    ReadOnly,
}

impl Refusal {
    fn message(&self, budget: u32) -> String {
        match self {
            Refusal::RateLimited(secs) => {
                format!("rate limited: this API key may make {budget} calls a minute; retry in {secs} s")
            }
            Refusal::Invalid(ArgError(m)) => m.clone(),
            Refusal::Forbidden(c) => ErrorResponse::forbidden(Scope::Mcp.as_str(), Some(c)).message,
            Refusal::ReadOnly => "this API key is read-only: it may not change data; use a key made without \
                                  --read-only"
                .to_owned(),
        }
    }
}

impl McpServer {
    fn actor(&self) -> String {
        self.caller.actor()
    }

    /// The gate every call passes (see the module docs).
    async fn admit(&self, tool: &'static str, parsed: Result<Parsed, ArgError>) -> Result<Parsed, Refusal> {
        let state = &self.state;
        let key = &self.caller.key;
        if let Err(wait) = self.budget.take(&key.id, state.now()) {
            // Buffered like other refusals: a flood of calls over the budget cannot flood the log.
            state.audit_refusal(&self.actor(), &format!("mcp rate limit: {tool}"));
            return Err(Refusal::RateLimited(wait.as_secs().max(1)));
        }
        let parsed = match parsed {
            Ok(p) => p,
            Err(e) => {
                return self
                    .refuse(tool, NO_CONNECTION, "refused: invalid arguments".into(), Refusal::Invalid(e))
                    .await;
            }
        };
        if let Some(c) = parsed.connection.as_deref()
            && !key.allows(c, Scope::Mcp)
        {
            state.metrics().forbidden.inc();
            let detail = format!("refused: connection {c:?} is not the key's");
            return self.refuse(tool, NO_CONNECTION, detail, Refusal::Forbidden(c.to_owned())).await;
        }
        if key.read_only && catalog::find(tool).is_some_and(catalog::ToolSpec::writes) {
            let connection = parsed.connection.as_deref().unwrap_or(NO_CONNECTION);
            return self.refuse(tool, connection, "refused: read-only key".into(), Refusal::ReadOnly).await;
        }
        Ok(parsed)
    }

    /// Audits a refused call (`detail` says why) and returns the refusal.
    async fn refuse(&self, tool: &str, connection: &str, detail: String, refusal: Refusal) -> Result<Parsed, Refusal> {
        self.state.audit(&self.actor(), connection, AuditAction::Mcp(tool.to_owned()), Some(detail)).await;
        Err(refusal)
    }

    /// Runs an admitted call: its result redacted as JSON text, audited either way.
    async fn run(&self, tool: &'static str, parsed: Parsed) -> Result<String, ErrorResponse> {
        let connection = parsed.connection.clone();
        let result = tools::run(&self.state, &self.caller.key, connection.as_deref(), parsed.call).await;
        let detail = match &result {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("failed: {} {}", e.status.as_u16(), e.code),
        };
        let at = connection.as_deref().unwrap_or(NO_CONNECTION);
        self.state.audit(&self.actor(), at, AuditAction::Mcp(tool.to_owned()), Some(detail)).await;
        let mut value = result?;
        safety::redact(&mut value);
        // Belt and braces: the exact token the broker holds for the connection never leaves.
        let held = connection.and_then(|c| self.state.live_entry(&c)).and_then(|e| e.cache.peek());
        let secrets: Vec<&str> = held.iter().map(|t| t.access_token.secret()).collect();
        Ok(safety::scrub(value.to_string(), &secrets))
    }
}

/// What an agent reads of a failure: 4xx say what to change; 5xx a request id, the detail
/// going to the log only (as the JSON API does).
fn failure_text(e: &ErrorResponse) -> String {
    if e.status.is_server_error() {
        let id = crate::ids::random_id(9);
        tracing::warn!(request_id = %id, status = e.status.as_u16(), code = e.code, "mcp: {}", e.message);
        format!("{}: internal error (request id {id}; the details are in the broker's log)", e.code)
    } else {
        forcelink_auth::body::redact(&format!("{}: {}", e.code, e.message))
    }
}

fn tool_error(message: String) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(message.clone())]);
    result.structured_content = Some(json!({ "error": message }));
    result
}

/// List items written as JSON (the wire shape, as the spec shows it), as rmcp's types.
fn items<T: serde::de::DeserializeOwned>(values: Vec<Value>) -> Result<Vec<T>, ErrorData> {
    values.into_iter().map(|v| serde_json::from_value(v).map_err(internal)).collect()
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(format!("building the answer: {e}"), None)
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_prompts().enable_resources().enable_tools().build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("forcelink", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // A read-only key is not offered tools it may not call.
        let tools: Vec<Value> = catalog::TOOLS
            .iter()
            .filter(|t| !(self.caller.key.read_only && t.writes()))
            .map(catalog::ToolSpec::descriptor)
            .collect();
        let list = ListToolsResult::with_all_items(items(tools)?);
        // The list depends on the key: no shared caches.
        Ok(list.with_ttl_ms(0).with_cache_scope(CacheScope::Private))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(spec) = catalog::find(&request.name) else {
            return Err(ErrorData::invalid_params(format!("no tool named {:?}; see tools/list", request.name), None));
        };
        let parsed = args::parse(spec.name, request.arguments);
        let parsed = match self.admit(spec.name, parsed).await {
            Ok(p) => p,
            Err(refusal) => return Ok(tool_error(refusal.message(self.budget.per_minute())).into()),
        };
        Ok(match self.run(spec.name, parsed).await {
            Ok(text) => {
                let structured = serde_json::from_str::<Value>(&text).map_err(internal)?;
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(structured);
                result.into()
            }
            Err(e) => tool_error(failure_text(&e)).into(),
        })
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = resources::list(&self.state, &self.caller.key)
            .await
            .map_err(|e| ErrorData::internal_error(failure_text(&e), None))?;
        let list = ListResourcesResult::with_all_items(items(resources)?);
        Ok(list.with_ttl_ms(0).with_cache_scope(CacheScope::Private))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let list = ListResourceTemplatesResult::with_all_items(items(resources::templates())?);
        Ok(list.with_ttl_ms(0).with_cache_scope(CacheScope::Private))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (tool, parsed) = match resources::parse_uri(&request.uri) {
            Ok((tool, parsed)) => (tool, Ok(parsed)),
            Err(ArgError(m)) => return Err(ErrorData::resource_not_found(m, None)),
        };
        let parsed = self
            .admit(tool, parsed)
            .await
            .map_err(|r| ErrorData::invalid_request(r.message(self.budget.per_minute()), None))?;
        let text = self.run(tool, parsed).await.map_err(|e| ErrorData::invalid_request(failure_text(&e), None))?;
        let contents = ResourceContents::text(text, request.uri).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).with_ttl_ms(0).with_cache_scope(CacheScope::Private).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let list = ListPromptsResult::with_all_items(items(resources::prompts())?);
        Ok(list.with_ttl_ms(0).with_cache_scope(CacheScope::Private))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let args: Map<String, Value> = request.arguments.unwrap_or_default();
        let filled =
            resources::prompt(&request.name, &args).map_err(|ArgError(m)| ErrorData::invalid_params(m, None))?;
        if !self.caller.key.allows(&filled.connection, Scope::Mcp) {
            let message = Refusal::Forbidden(filled.connection).message(self.budget.per_minute());
            return Err(ErrorData::invalid_params(message, None));
        }
        let mut result: GetPromptResult = serde_json::from_value(filled.result).map_err(internal)?;
        // Built from JSON, so the 2026-07-28 result type is set here as the constructors would.
        result.result_type = Some(ResultType::COMPLETE);
        Ok(result.into())
    }
}
