//! `/v1/openapi.json`: an OpenAPI 3.1 document built with utoipa from the route documentation
//! it is given ([`RouteDoc`]s: the route table in [`crate::routes`] passes its own) — every
//! documented route with its parameters, scope, request body and every answer it gives — and
//! the schemas of the body types in [`crate::body`], which the handlers return, so the document
//! says what is sent. [`RouteDoc`] and its builder methods are what the table declares with.

use std::borrow::Cow;
use std::collections::BTreeMap;

use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder,
};

use crate::access::Access;
use crate::body::{ErrorBody, NAME_PATTERN};

/// A JSON body type with its schema (see [`crate::body`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyType {
    /// The schema's name in the document's components.
    pub name: fn() -> Cow<'static, str>,
    /// Adds the type's schema and those it refers to.
    pub schemas: fn(&mut Vec<(String, RefOr<Schema>)>),
}

fn collect_schemas<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

impl BodyType {
    pub(crate) fn of<T: ToSchema>() -> Self {
        BodyType { name: T::name, schemas: collect_schemas::<T> }
    }
    pub(crate) fn collect(&self, out: &mut Vec<(String, RefOr<Schema>)>) {
        (self.schemas)(out)
    }
}

/// What a route answers with one status.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// One of these JSON bodies.
    Json(Vec<BodyType>),
    /// The JSON error, [`crate::body::ErrorBody`].
    Error,
    /// Text of this content type.
    Text(&'static str),
    /// Whatever Salesforce answered (the proxy).
    Any,
}

/// A parameter's schema.
pub(crate) type ParamSchema = fn() -> RefOr<Schema>;

/// What the OpenAPI document says about a route.
#[derive(Debug, Clone)]
pub(crate) struct RouteDoc {
    /// `GET`, `POST`, … or `ANY`.
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Part of the JSON API (documented), or of the web page (not documented).
    pub api: bool,
    /// A JSON request body is expected.
    pub body: bool,
    /// Its type.
    pub request: Option<BodyType>,
    /// Every status the route answers, with what comes with it.
    pub answers: Vec<(u16, Answer)>,
    /// Path parameters whose schema is not a plain string.
    pub path_params: Vec<(&'static str, ParamSchema)>,
    /// Optional query parameters: name, description, schema.
    pub query: Vec<(&'static str, &'static str, ParamSchema)>,
    /// A path parameter whose value picks the request body: the document shows one path per
    /// value (e.g. one per action, each with its input), as a schema cannot tie a body to a
    /// path parameter.
    pub variants: Option<(&'static str, Vec<(&'static str, BodyType)>)>,
}

pub(crate) fn doc(method: &'static str, path: &'static str, access: Access, summary: &'static str) -> RouteDoc {
    let path_params: Vec<(&'static str, ParamSchema)> =
        if path.contains("{name}") { vec![("name", name_schema as ParamSchema)] } else { Vec::new() };
    RouteDoc {
        method,
        path,
        summary,
        access,
        api: true,
        body: false,
        request: None,
        answers: Vec::new(),
        path_params,
        query: Vec::new(),
        variants: None,
    }
}

/// A route that speaks another protocol than the JSON API (MCP's JSON-RPC): in the table for its
/// access rule, left out of the document like the page's routes.
pub(crate) fn protocol(method: &'static str, path: &'static str, access: Access, summary: &'static str) -> RouteDoc {
    RouteDoc { api: false, path_params: Vec::new(), ..doc(method, path, access, summary) }
}

pub(crate) fn page(method: &'static str, path: &'static str, access: Access, summary: &'static str) -> RouteDoc {
    RouteDoc { api: false, path_params: Vec::new(), ..doc(method, path, access, summary) }
}

fn name_schema() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).pattern(Some(NAME_PATTERN)).into()
}

impl RouteDoc {
    /// Takes a JSON body of type `T`.
    pub(crate) fn takes<T: ToSchema>(mut self) -> Self {
        self.body = true;
        self.request = Some(BodyType::of::<T>());
        self
    }
    /// Answers `status` with a `T`.
    pub(crate) fn ok<T: ToSchema>(mut self, status: u16) -> Self {
        self.answers.push((status, Answer::Json(vec![BodyType::of::<T>()])));
        self
    }
    pub(crate) fn answer(mut self, status: u16, answer: Answer) -> Self {
        self.answers.push((status, answer));
        self
    }
    /// Answers these statuses with the JSON error. Key routes add 401, 403 and 503 (the key
    /// store, or the time limit), routes with a body 400, 413 and 415 (by themselves).
    pub(crate) fn errors(mut self, statuses: &[u16]) -> Self {
        let mut all: Vec<u16> = statuses.to_vec();
        if self.access.scope().is_some() {
            all.extend([401, 403, 503]);
        }
        if self.body {
            all.extend([400, 413, 415]);
        }
        if self.path.contains('{') {
            all.push(404);
        }
        all.sort_unstable();
        all.dedup();
        for s in all {
            if !self.answers.iter().any(|(have, _)| *have == s) {
                self.answers.push((s, Answer::Error));
            }
        }
        self
    }
    /// Path parameter `name` has `schema` (instead of a plain string).
    pub(crate) fn path(mut self, name: &'static str, schema: ParamSchema) -> Self {
        self.path_params.retain(|(n, _)| *n != name);
        self.path_params.push((name, schema));
        self
    }
    pub(crate) fn query(mut self, name: &'static str, description: &'static str, schema: ParamSchema) -> Self {
        self.query.push((name, description, schema));
        self
    }
    pub(crate) fn variants(mut self, param: &'static str, bodies: Vec<(&'static str, BodyType)>) -> Self {
        self.body = true;
        self.variants = Some((param, bodies));
        self
    }
}

/// Methods an `ANY` route is documented with.
const ANY_METHODS: [HttpMethod; 5] =
    [HttpMethod::Get, HttpMethod::Post, HttpMethod::Put, HttpMethod::Patch, HttpMethod::Delete];

fn method_name(m: &HttpMethod) -> &'static str {
    match m {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Patch => "patch",
        HttpMethod::Delete => "delete",
        HttpMethod::Head => "head",
        HttpMethod::Options => "options",
        HttpMethod::Trace => "trace",
    }
}

fn reference(t: &BodyType) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name((t.name)()))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "Success",
        201 => "Created",
        400 => "Bad input: the message names the problem",
        401 => "No valid API key",
        403 => "The key lacks the scope or the connection",
        404 => "No such connection, key or action",
        405 => "Method not allowed",
        409 => "A conflict: it exists, or a person must act (re-authorize, fix a setting)",
        413 => "Body too large",
        415 => "Not application/json",
        422 => "Endpoint edits need every secret again",
        502 => "Salesforce failed; retrying may help",
        503 => "The store or the time limit",
        _ => "An answer",
    }
}

fn operation(
    d: &RouteDoc,
    path: &str,
    request: Option<&BodyType>,
    method: &HttpMethod,
) -> utoipa::openapi::path::Operation {
    let id: String = format!("{}_{}", method_name(method), path)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    let mut op = OperationBuilder::new().summary(Some(d.summary)).operation_id(Some(id));
    for p in path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')) {
        let schema = match d.path_params.iter().find(|(name, _)| *name == p) {
            Some((_, schema)) => schema(),
            None => ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).into(),
        };
        op = op.parameter(
            ParameterBuilder::new()
                .name(p)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(schema)),
        );
    }
    for (name, description, schema) in &d.query {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(*description))
                .schema(Some(schema())),
        );
    }
    if let Some(body) = request {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content("application/json", ContentBuilder::new().schema(Some(reference(body))).build())
                .build(),
        ));
    }
    for (status, answer) in &d.answers {
        let mut response = ResponseBuilder::new().description(reason(*status));
        let json = |schema: RefOr<Schema>| ContentBuilder::new().schema(Some(schema)).build();
        response = match answer {
            Answer::Error => response.content("application/json", json(reference(&BodyType::of::<ErrorBody>()))),
            Answer::Json(types) if types.len() == 1 => response.content("application/json", json(reference(&types[0]))),
            Answer::Json(types) => {
                let any = types.iter().fold(AnyOfBuilder::new(), |any, t| any.item(reference(t)));
                response.content("application/json", json(any.into()))
            }
            Answer::Text(kind) => {
                response.content(*kind, json(ObjectBuilder::new().schema_type(SchemaType::Type(Type::String)).into()))
            }
            Answer::Any => response,
        };
        op = op.response(status.to_string(), response.build());
    }
    match d.access.scope() {
        Some(scope) => {
            op = op
                .security(SecurityRequirement::new("apiKey", Vec::<String>::new()))
                .description(Some(format!("Needs an API key with the `{scope}` scope (and the connection).")));
        }
        // An empty list: no key needed (the document sets no global requirement either).
        None => op = op.securities(Some(Vec::new())),
    }
    op.build()
}

/// The document of `routes`, as utoipa's model.
pub(crate) fn openapi(routes: &[RouteDoc]) -> OpenApi {
    let mut items: BTreeMap<String, Vec<(HttpMethod, utoipa::openapi::path::Operation)>> = BTreeMap::new();
    let mut schemas = Vec::new();
    BodyType::of::<ErrorBody>().collect(&mut schemas);
    for d in routes.iter().filter(|d| d.api) {
        let methods: Vec<HttpMethod> = if d.method == "ANY" {
            ANY_METHODS.to_vec()
        } else {
            vec![match d.method {
                "GET" => HttpMethod::Get,
                "POST" => HttpMethod::Post,
                "PUT" => HttpMethod::Put,
                "PATCH" => HttpMethod::Patch,
                _ => HttpMethod::Delete,
            }]
        };
        let variants: Vec<(String, Option<BodyType>)> = match &d.variants {
            Some((param, bodies)) => bodies
                .iter()
                .map(|(value, body)| (d.path.replace(&format!("{{{param}}}"), value), Some(*body)))
                .collect(),
            None => vec![(d.path.to_owned(), d.request)],
        };
        for t in variants.iter().filter_map(|(_, b)| b.as_ref()).chain(d.answers.iter().flat_map(|(_, a)| match a {
            Answer::Json(types) => types.as_slice(),
            _ => &[],
        })) {
            t.collect(&mut schemas);
        }
        for (path, request) in &variants {
            for m in &methods {
                let op = operation(d, path, request.as_ref(), m);
                items.entry(path.clone()).or_default().push((m.clone(), op));
            }
        }
    }
    // Paths in table order would be nicer to read, but a map keeps one entry per path.
    let mut paths = PathsBuilder::new();
    for (path, ops) in items {
        let mut item: Option<PathItem> = None;
        for (m, op) in ops {
            let one = PathItem::new(m, op);
            match &mut item {
                Some(i) => i.merge_operations(one),
                None => item = Some(one),
            }
        }
        if let Some(item) = item {
            paths = paths.path(path, item);
        }
    }
    schemas.sort_by(|a, b| a.0.cmp(&b.0));
    schemas.dedup_by(|a, b| a.0 == b.0);
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("flk_<id>_<secret> from `forcelink apikey create`"))
                    .build(),
            ),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("forcelink broker")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("Salesforce tokens, a proxy and actions by connection name.")),
        )
        .paths(paths.build())
        .components(Some(components))
        .build()
}

/// The document of `routes` as JSON.
pub(crate) fn document(routes: &[RouteDoc]) -> serde_json::Value {
    serde_json::to_value(openapi(routes)).unwrap_or_default()
}
