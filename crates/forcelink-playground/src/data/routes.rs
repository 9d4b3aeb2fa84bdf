//! The REST resources under `/services/data/vXX.X/`: which path and method goes to which
//! resource, and the small resources answered here (the resource list, describes, blobs,
//! external-id access, record counts, limits).

use axum::http::{HeaderMap, Method, StatusCode, header};
use rusqlite::types::Value as Sql;
use serde_json::{Map, Value, json};

use super::records::{self, Upserted};
use super::request::{ApiRequest, Ctx, Reply, SfError, json_object};
use crate::state::Shared;

fn method_not_allowed(method: &Method, allowed: &str) -> Reply {
    Reply::error(&SfError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    ))
}

fn object_of(ctx: &Ctx<'_>, name: &str) -> Result<usize, SfError> {
    ctx.db.schema.index_of(name).ok_or_else(SfError::not_found)
}

/// Routes one request to its resource.
pub(crate) fn dispatch(pg: &Shared, ctx: &mut Ctx<'_>, req: &ApiRequest<'_>) -> Reply {
    match route(pg, ctx, req) {
        Ok(r) => r,
        Err(e) => Reply::error(&e),
    }
}

fn route(pg: &Shared, ctx: &mut Ctx<'_>, req: &ApiRequest<'_>) -> Result<Reply, SfError> {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = &req.method;
    let v = ctx.version.text.clone();
    match segs.as_slice() {
        [] => {
            if m != Method::GET {
                return Ok(method_not_allowed(m, "GET,HEAD"));
            }
            Ok(Reply::json(StatusCode::OK, &resources(pg, &v, &ctx.caller.id)))
        }
        ["sobjects"] => match *m {
            Method::GET if not_modified(pg, req.headers) => Ok(Reply::empty(StatusCode::NOT_MODIFIED)),
            Method::GET => {
                let mut global = ctx.db.schema.describe_global(&v);
                if let Some(list) = global.get_mut("sobjects").and_then(Value::as_array_mut) {
                    list.extend(platform_event_entries(pg, &v));
                }
                Ok(Reply::json(StatusCode::OK, &global))
            }
            _ => Ok(method_not_allowed(m, "GET,HEAD")),
        },
        ["sobjects", t] => {
            let oi = object_of(ctx, t)?;
            match *m {
                Method::GET => {
                    let o = &ctx.db.schema.objects[oi];
                    Ok(Reply::json(StatusCode::OK, &json!({"objectDescribe": o.global_entry(&v), "recentItems": []})))
                }
                Method::POST => {
                    let body = if ctx.db.schema.objects[oi].name == "ContentVersion" {
                        content_version_body(req)?
                    } else {
                        json_object(req.body)?
                    };
                    let id = records::create(ctx, oi, &body)?;
                    let mut r = Reply::json(StatusCode::CREATED, &json!({"id": id, "success": true, "errors": []}));
                    let name = ctx.db.schema.objects[oi].name.clone();
                    r.headers.push(("location", format!("/services/data/v{v}/sobjects/{name}/{id}")));
                    Ok(r)
                }
                _ => Ok(method_not_allowed(m, "GET,HEAD,POST")),
            }
        }
        ["sobjects", t, "describe"] => {
            let oi = object_of(ctx, t)?;
            match *m {
                Method::GET if not_modified(pg, req.headers) => Ok(Reply::empty(StatusCode::NOT_MODIFIED)),
                Method::GET => Ok(Reply::json(
                    StatusCode::OK,
                    &ctx.db.schema.objects[oi].describe(&ctx.db.schema, &v, &pg.instance_url),
                )),
                _ => Ok(method_not_allowed(m, "GET,HEAD")),
            }
        }
        ["sobjects", t, which @ ("updated" | "deleted")] => {
            let oi = object_of(ctx, t)?;
            if *m != Method::GET {
                return Ok(method_not_allowed(m, "GET,HEAD"));
            }
            if *which == "updated" {
                super::replication::updated(ctx, oi, &req.params)
            } else {
                super::replication::deleted(ctx, oi, &req.params)
            }
        }
        ["sobjects", t, id] => {
            let oi = object_of(ctx, t)?;
            match *m {
                Method::GET => {
                    let rec = records::retrieve(ctx, oi, id, req.params.get("fields"))?;
                    Ok(Reply::json(StatusCode::OK, &rec))
                }
                Method::PATCH => {
                    let body = json_object(req.body)?;
                    records::update(ctx, oi, id, &body)?;
                    Ok(Reply::empty(StatusCode::NO_CONTENT))
                }
                Method::DELETE => {
                    records::delete(ctx, oi, id)?;
                    Ok(Reply::empty(StatusCode::NO_CONTENT))
                }
                Method::POST if id.eq_ignore_ascii_case("Id") => {
                    // API ≥ 37.0: POST …/{Type}/Id creates (Id as the external id, no value).
                    let body = json_object(req.body)?;
                    let new = records::create(ctx, oi, &body)?;
                    Ok(Reply::json(
                        StatusCode::CREATED,
                        &json!({"id": new, "success": true, "errors": [], "created": true}),
                    ))
                }
                _ => Ok(method_not_allowed(m, "GET,PATCH,HEAD,DELETE")),
            }
        }
        ["sobjects", t, id, sub] if is_record_of(ctx, t, id) => {
            let oi = object_of(ctx, t)?;
            let name = ctx.db.schema.objects[oi].name.clone();
            match (name.as_str(), sub.to_ascii_lowercase().as_str()) {
                ("User", "password") => super::useradmin::password(pg, ctx, m, id, req.body),
                (_, _) => blob(ctx, oi, id, sub),
            }
        }
        ["sobjects", t, field, value] => {
            let oi = object_of(ctx, t)?;
            external_id_resource(ctx, req, oi, field, value)
        }
        ["query"] | ["queryAll"] => {
            if m != Method::GET {
                return Ok(method_not_allowed(m, "GET,HEAD"));
            }
            let q = req
                .params
                .get("q")
                .filter(|q| !q.trim().is_empty())
                .ok_or_else(|| SfError::bad("MALFORMED_QUERY", "A query string has to be specified"))?;
            let batch = super::query::batch_size(req.headers);
            super::query::run(ctx, &pg.data.locators, q, segs[0] == "queryAll", batch)
        }
        ["query", locator] | ["queryAll", locator] => {
            if m != Method::GET {
                return Ok(method_not_allowed(m, "GET,HEAD"));
            }
            super::query::more(ctx, &pg.data.locators, locator)
        }
        ["search"] => {
            let q = req.params.get("q").unwrap_or("");
            super::query::search(ctx, q)
        }
        ["composite"] if m == Method::POST => super::composite::composite(pg, ctx, req.body, dispatch),
        ["composite", "graph"] if m == Method::POST => super::composite::graph(pg, ctx, req.body, dispatch),
        ["composite", "batch"] if m == Method::POST => super::composite::batch(pg, ctx, req.body, dispatch),
        ["composite", "tree", t] if m == Method::POST => super::composite::tree(ctx, t, req.body),
        ["composite", "sobjects"] => super::composite::collections(ctx, m, &req.params, req.body),
        ["composite", "sobjects", t] => super::composite::retrieve_many(ctx, t, m, &req.params, req.body),
        ["composite", "sobjects", t, field] if m == Method::PATCH => {
            super::composite::upsert_many(ctx, t, field, req.body)
        }
        ["composite"] | ["composite", "batch" | "graph"] | ["composite", "tree", _] => {
            Ok(method_not_allowed(m, "POST"))
        }
        ["jobs", rest @ ..] => super::bulk::route(pg, ctx, m, rest, &req.params, req.headers, req.body),
        ["limits"] => Ok(Reply::json(StatusCode::OK, &super::limits::limits(pg, ctx)?)),
        ["limits", "recordCount"] => {
            let names = req.params.get("sObjects").unwrap_or("");
            let mut out = Vec::new();
            for name in names.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if let Some(oi) = ctx.db.schema.index_of(name) {
                    let n = ctx.db.count(oi, false)?;
                    out.push(json!({"count": n, "name": ctx.db.schema.objects[oi].name}));
                }
            }
            Ok(Reply::json(StatusCode::OK, &json!({"sObjects": out})))
        }
        _ => Err(SfError::not_found()),
    }
}

/// `If-Modified-Since` on describeGlobal and describe (wire reference §6.2, §7: 304): true
/// when the date is at or after the schema's last change. HTTP dates have whole seconds, so the
/// change time is rounded down to its second.
fn not_modified(pg: &Shared, headers: &HeaderMap) -> bool {
    let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return false;
    };
    let Ok(since) = since.duration_since(std::time::UNIX_EPOCH) else { return false };
    since.as_millis() as i64 >= pg.data.schema_modified_ms.div_euclid(1000) * 1000
}

/// True when `id` looks like a record id of object `t` (so the next segment is a sub-resource,
/// not an external-id value).
fn is_record_of(ctx: &Ctx<'_>, t: &str, id: &str) -> bool {
    let Some(o) = ctx.db.schema.get(t) else { return false };
    records::normalize_id(id).is_some_and(|n| n.starts_with(&o.key_prefix))
}

fn blob(ctx: &Ctx<'_>, oi: usize, id: &str, field: &str) -> Result<Reply, SfError> {
    let o = &ctx.db.schema.objects[oi];
    let fi = o.field_index(field).filter(|&i| o.fields[i].ftype == crate::schema::FieldType::Base64);
    let Some(fi) = fi else { return Err(SfError::not_found()) };
    let row = records::live_row(ctx.db, oi, id)?;
    match &row[fi] {
        Sql::Blob(b) => Ok(Reply {
            status: StatusCode::OK,
            body: b.clone(),
            content_type: Some("application/octetstream"),
            headers: Vec::new(),
        }),
        _ => Err(SfError::not_found()),
    }
}

fn external_id_resource(
    ctx: &mut Ctx<'_>,
    req: &ApiRequest<'_>,
    oi: usize,
    field: &str,
    value: &str,
) -> Result<Reply, SfError> {
    let v = ctx.version.text.clone();
    let name = ctx.db.schema.objects[oi].name.clone();
    let not_ext = || {
        SfError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {field}"),
        )
    };
    match req.method {
        Method::PATCH | Method::POST => {
            let body = json_object(req.body)?;
            ctx.update_only = req.params.get("updateOnly").is_some_and(|s| s.eq_ignore_ascii_case("true"));
            match records::upsert(ctx, oi, field, value, &body)? {
                Upserted::Created(id) => {
                    let mut r = Reply::json(
                        StatusCode::CREATED,
                        &if ctx.version.major >= 46 {
                            json!({"id": id, "success": true, "errors": [], "created": true})
                        } else {
                            json!({"id": id, "success": true, "errors": []})
                        },
                    );
                    r.headers.push(("location", format!("/services/data/v{v}/sobjects/{name}/{id}")));
                    Ok(r)
                }
                // API ≥ 46.0 answers 200 with a body; older versions 204 (wire reference §6.3).
                Upserted::Updated(id) if ctx.version.major >= 46 => {
                    Ok(Reply::json(StatusCode::OK, &json!({"id": id, "success": true, "errors": [], "created": false})))
                }
                Upserted::Updated(_) => Ok(Reply::empty(StatusCode::NO_CONTENT)),
                Upserted::Multiple(ids) => {
                    let urls: Vec<String> =
                        ids.iter().map(|id| format!("/services/data/v{v}/sobjects/{name}/{id}")).collect();
                    Ok(Reply::json(StatusCode::MULTIPLE_CHOICES, &json!(urls)))
                }
            }
        }
        Method::GET | Method::DELETE => {
            let o = &ctx.db.schema.objects[oi];
            let fi = o.field_index(field).filter(|&i| o.fields[i].id_lookup()).ok_or_else(not_ext)?;
            let key = records::to_sql(&o.fields[fi], &json!(value)).map_err(|_| SfError::not_found())?;
            let ids = ctx.db.ids_where(oi, &o.fields[fi].name.clone(), &key, 201)?;
            match ids.len() {
                0 => Err(SfError::not_found()),
                1 if req.method == Method::GET => {
                    Ok(Reply::json(StatusCode::OK, &records::retrieve(ctx, oi, &ids[0], req.params.get("fields"))?))
                }
                1 => {
                    records::delete(ctx, oi, &ids[0])?;
                    Ok(Reply::empty(StatusCode::NO_CONTENT))
                }
                _ => {
                    let urls: Vec<String> =
                        ids.iter().map(|id| format!("/services/data/v{v}/sobjects/{name}/{id}")).collect();
                    Ok(Reply::json(StatusCode::MULTIPLE_CHOICES, &json!(urls)))
                }
            }
        }
        _ => Ok(method_not_allowed(&req.method, "GET,PATCH,HEAD,DELETE")),
    }
}

/// A ContentVersion insert body: JSON, or multipart with an `entity_content` JSON part and a
/// binary `VersionData` part.
fn content_version_body(req: &ApiRequest<'_>) -> Result<Map<String, Value>, SfError> {
    let raw_ct = req.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !raw_ct.to_ascii_lowercase().starts_with("multipart/") {
        return json_object(req.body);
    }
    let bad = |m: &str| SfError::bad("MALFORMED_REQUEST", m.to_owned());
    let boundary = multer::parse_boundary(raw_ct).map_err(|_| bad("The multipart request has no boundary"))?;
    let body = bytes::Bytes::copy_from_slice(req.body);
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    type Parts = (Option<Map<String, Value>>, Option<Vec<u8>>);
    let parsed: Result<Parts, SfError> = futures_util::FutureExt::now_or_never(async {
        let mut entity = None;
        let mut data = None;
        while let Some(field) = mp.next_field().await.map_err(|_| bad("Malformed multipart body"))? {
            let name = field.name().unwrap_or("").to_owned();
            let bytes = field.bytes().await.map_err(|_| bad("Malformed multipart body"))?;
            if name == "entity_content" || name == "entity_document" || name == "json" {
                entity = Some(json_object(&bytes)?);
            } else {
                data = Some(bytes.to_vec());
            }
        }
        Ok((entity, data))
    })
    .unwrap_or_else(|| Err(bad("Malformed multipart body")));
    let (entity, data) = parsed?;
    let mut entity = entity.ok_or_else(|| bad("The multipart request has no entity_content part"))?;
    if let Some(d) = data {
        use base64::Engine;
        entity.insert("VersionData".into(), json!(base64::engine::general_purpose::STANDARD.encode(d)));
    }
    Ok(entity)
}

/// `GET /services/data/vXX.X/`: the resources of this version.
fn resources(pg: &Shared, v: &str, user_id: &str) -> Value {
    let mut m = Map::new();
    for name in [
        "tooling",
        "metadata",
        "eclair",
        "folders",
        "prechatForms",
        "chatter",
        "tabs",
        "appMenu",
        "quickActions",
        "queryAll",
        "analytics",
        "search",
        "composite",
        "parameterizedSearch",
        "theme",
        "recent",
        "licensing",
        "limits",
        "process",
        "query",
        "jobs",
        "sobjects",
        "actions",
        "support",
        "ui-api",
    ] {
        m.insert(name.into(), json!(format!("/services/data/v{v}/{name}")));
    }
    m.insert("identity".into(), json!(pg.identity_url(&pg.login_url, user_id)));
    Value::Object(m)
}

/// describeGlobal's entries for the seed's platform events (`X__e`), which Salesforce lists among
/// the sObjects: publishable (`createable`), not queryable or storable as records.
/// UNCONFIRMED: the flags and the `e0N` key prefixes follow describeGlobal answers seen in orgs
/// with platform events; the playground serves no describe or records for them.
fn platform_event_entries(pg: &Shared, v: &str) -> Vec<Value> {
    let mut names: Vec<&str> =
        pg.events.catalog.platform.keys().filter_map(|topic| topic.strip_prefix("/event/")).collect();
    names.sort_unstable();
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let label = name.trim_end_matches("__e").replace('_', " ");
            let base = format!("/services/data/v{v}/sobjects/{name}");
            json!({
                "activateable": false,
                "createable": true,
                "custom": true,
                "customSetting": false,
                "deletable": false,
                "deprecatedAndHidden": false,
                "feedEnabled": false,
                "hasSubtypes": false,
                "isSubtype": false,
                "keyPrefix": format!("e{:02}", (i + 1) % 100),
                "label": label,
                "labelPlural": label,
                "layoutable": false,
                "mergeable": false,
                "mruEnabled": false,
                "name": name,
                "queryable": false,
                "replicateable": false,
                "retrieveable": false,
                "searchable": false,
                "triggerable": true,
                "undeletable": false,
                "updateable": false,
                "urls": {"sobject": base, "describe": format!("{base}/describe"), "rowTemplate": format!("{base}/{{ID}}")},
            })
        })
        .collect()
}
