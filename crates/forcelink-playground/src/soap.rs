//! The SOAP API's `login()` and `logout()` calls, what simple-salesforce and jsforce use when
//! given a username, a password and a security token but no connected app:
//! `POST /services/Soap/u/{version}` (partner WSDL) and `/services/Soap/c/{version}` (enterprise),
//! on both hosts, optionally followed by the org id as in the `serverUrl` login answers.
//!
//! A login's `sessionId` is an access token like any other: it works on the REST API, expires
//! with the org's session timeout and is revoked by `logout()` or `/services/oauth2/revoke`.
//! Other SOAP calls are not served: they get the fault Salesforce sends for an unknown operation.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::oauth::secrets_equal;
use crate::state::Shared;

/// The first API version without `login()`: Salesforce's release notes say "SOAP API login()
/// not available in API version 65.0 onwards" (Winter '26); older versions keep it until
/// Summer '27.
const LOGIN_RETIRED_FROM: u32 = 65;

/// Which WSDL the endpoint speaks: `u` = partner, `c` = enterprise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wsdl {
    Partner,
    Enterprise,
}

impl Wsdl {
    fn namespace(self) -> &'static str {
        match self {
            Self::Partner => "urn:partner.soap.sforce.com",
            Self::Enterprise => "urn:enterprise.soap.sforce.com",
        }
    }
    fn fault_namespace(self) -> &'static str {
        match self {
            Self::Partner => "urn:fault.partner.soap.sforce.com",
            Self::Enterprise => "urn:fault.enterprise.soap.sforce.com",
        }
    }
    fn letter(self) -> &'static str {
        match self {
            Self::Partner => "u",
            Self::Enterprise => "c",
        }
    }
}

/// `POST /services/Soap/{u|c}/{version}`.
pub(crate) async fn endpoint(
    State(pg): State<Shared>,
    Path((kind, version)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    handle(&pg, &kind, &version, &body)
}

/// `POST /services/Soap/{u|c}/{version}/{orgId}` (the `serverUrl` of a login answer).
pub(crate) async fn endpoint_with_org(
    State(pg): State<Shared>,
    Path((kind, version, _org)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    handle(&pg, &kind, &version, &body)
}

fn handle(pg: &Shared, kind: &str, version: &str, body: &[u8]) -> Response {
    let wsdl = match kind {
        "u" => Wsdl::Partner,
        "c" => Wsdl::Enterprise,
        _ => return not_found(),
    };
    let Some(major) = parse_version(version) else {
        // UNCONFIRMED: the fault for a version the org does not know; Salesforce documents
        // `500:UNSUPPORTED_API_VERSION` for retired versions.
        return fault(
            wsdl,
            "sf:UNSUPPORTED_API_VERSION",
            "UNSUPPORTED_API_VERSION",
            &format!("UNSUPPORTED_API_VERSION: Invalid Api version specified on URL: {version}"),
        );
    };
    let text = String::from_utf8_lossy(body);
    let Some(op) = operation(&text) else {
        // UNCONFIRMED: the fault text for an unreadable envelope.
        return client_fault(
            "Unable to find the operation in the SOAP body: send a SOAP envelope with a login or logout element",
        );
    };
    match op.as_str() {
        "login" => login(pg, wsdl, major, version, &text),
        "logout" => logout(pg, wsdl, &text),
        other => client_fault(&format!(
            "No operation available for request {{{}}}{other}, please check the WSDL for the service.",
            wsdl.namespace()
        )),
    }
}

fn parse_version(v: &str) -> Option<u32> {
    let (major, minor) = v.split_once('.')?;
    let m: u32 = major.parse().ok()?;
    let latest: u32 = crate::call::LATEST_API_VERSION.split('.').next()?.parse().ok()?;
    (minor == "0" && (crate::call::OLDEST_API_VERSION..=latest).contains(&m)).then_some(m)
}

fn login(pg: &Shared, wsdl: Wsdl, major: u32, version: &str, envelope: &str) -> Response {
    if major >= LOGIN_RETIRED_FROM {
        // UNCONFIRMED: the exact fault. The release notes only say login() is not available
        // from 65.0; the fault Salesforce documents for a call a version lacks is this one.
        return fault(
            wsdl,
            "sf:UNSUPPORTED_API_VERSION",
            "UNSUPPORTED_API_VERSION",
            &format!(
                "UNSUPPORTED_API_VERSION: login() is not available in API version {version}; use API version 64.0 or earlier, or OAuth 2.0"
            ),
        );
    }
    let username = element_text(envelope, "username").unwrap_or_default();
    let given = element_text(envelope, "password").unwrap_or_default();
    let invalid =
        || login_fault(wsdl, "INVALID_LOGIN", "Invalid username, password, security token; or user locked out.");
    let mut rt = pg.rt();
    let Some(user) = rt.user_by_name(&username) else { return invalid() };
    let u = rt.users[user].clone();
    let with_token = format!("{}{}", u.password, u.security_token);
    if !secrets_equal(&given, &with_token) {
        if !u.security_token.is_empty() && secrets_equal(&given, &u.password) {
            return login_fault(wsdl, "LOGIN_MUST_USE_SECURITY_TOKEN", MUST_USE_TOKEN);
        }
        return invalid();
    }
    if !u.can_log_in() {
        // UNCONFIRMED: inactive and frozen users get the generic login fault.
        return invalid();
    }
    let (session_id, _) = pg.mint_access(&mut rt, user, 0, &["api".to_owned(), "web".to_owned()], None);
    crate::state::bump(&mut rt.stats.tokens_issued, "soap_login");
    crate::state::bump(&mut rt.stats.tokens_issued_by_user, &u.username);
    drop(rt);
    let profile_id = profile_id(pg, &u.id);
    let org15 = pg.org_id15();
    let base = &pg.instance_url;
    let ns = wsdl.namespace();
    let letter = wsdl.letter();
    let timeout = pg.seed.org.session_timeout_seconds;
    let org_name = xml_escape(&pg.seed.org.name);
    let profile = match profile_id {
        Some(p) => format!("<profileId>{p}</profileId>"),
        None => "<profileId xsi:nil=\"true\"/>".to_owned(),
    };
    // Field order and values after simple-salesforce's recorded LOGIN_RESPONSE_SUCCESS.
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
xmlns=\"{ns}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><loginResponse><result>\
<metadataServerUrl>{base}/services/Soap/m/{version}/{org15}</metadataServerUrl>\
<passwordExpired>false</passwordExpired><sandbox>false</sandbox>\
<serverUrl>{base}/services/Soap/{letter}/{version}/{org15}</serverUrl>\
<sessionId>{session_id}</sessionId><userId>{user_id}</userId><userInfo>\
<accessibilityMode>false</accessibilityMode><chatterExternal>false</chatterExternal><currencySymbol>$</currencySymbol>\
<orgAttachmentFileSizeLimit>5242880</orgAttachmentFileSizeLimit><orgDefaultCurrencyIsoCode>USD</orgDefaultCurrencyIsoCode>\
<orgDefaultCurrencyLocale>en_US</orgDefaultCurrencyLocale><orgDisallowHtmlAttachments>false</orgDisallowHtmlAttachments>\
<orgHasPersonAccounts>false</orgHasPersonAccounts><organizationId>{org_id}</organizationId>\
<organizationMultiCurrency>false</organizationMultiCurrency><organizationName>{org_name}</organizationName>\
{profile}<roleId xsi:nil=\"true\"/><sessionSecondsValid>{timeout}</sessionSecondsValid>\
<userDefaultCurrencyIsoCode xsi:nil=\"true\"/><userEmail>{email}</userEmail><userFullName>{full_name}</userFullName>\
<userId>{user_id}</userId><userLanguage>{locale}</userLanguage><userLocale>{locale}</userLocale>\
<userName>{username}</userName><userTimeZone>{tz}</userTimeZone><userType>Standard</userType>\
<userUiSkin>Theme3</userUiSkin></userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>",
        user_id = u.id,
        org_id = pg.org_id,
        email = xml_escape(&u.email),
        full_name = xml_escape(&u.display_name()),
        locale = xml_escape(&u.locale),
        username = xml_escape(&u.username),
        tz = xml_escape(&u.time_zone),
    );
    xml(StatusCode::OK, body)
}

const MUST_USE_TOKEN: &str = "Invalid username, password, security token; or user locked out. Are you at a new location? When accessing Salesforce--either via a desktop client or the API--from outside of your company\u{2019}s trusted networks, you must add a security token to your password to log in. To get your new security token, log in to Salesforce. From your personal settings, enter Reset My Security Token in the Quick Find box, then select Reset My Security Token.";

fn logout(pg: &Shared, wsdl: Wsdl, envelope: &str) -> Response {
    let session = element_text(envelope, "sessionId").unwrap_or_default();
    let now = pg.now_ms();
    let mut rt = pg.rt();
    if rt.live_access(&session, now).is_none() {
        return fault(
            wsdl,
            "sf:INVALID_SESSION_ID",
            "INVALID_SESSION_ID",
            "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session",
        );
    }
    rt.access_tokens.remove(&session);
    drop(rt);
    xml(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
xmlns=\"{}\"><soapenv:Body><logoutResponse/></soapenv:Body></soapenv:Envelope>",
            wsdl.namespace()
        ),
    )
}

fn profile_id(pg: &Shared, user_id: &str) -> Option<String> {
    let db = pg.data.store.lock();
    let table = db.schema.objects.get(db.schema.index_of("User")?)?.table();
    db.conn
        .query_row(&format!("SELECT \"ProfileId\" FROM {table} WHERE \"Id\" = ?1"), [user_id], |r| {
            r.get::<_, Option<String>>(0)
        })
        .ok()
        .flatten()
}

/// A login fault: `sf:LoginFault` with its exception code and message (simple-salesforce's
/// recorded `INVALID_LOGIN` answer).
fn login_fault(wsdl: Wsdl, code: &str, message: &str) -> Response {
    let message = xml_escape(message);
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
xmlns:sf=\"{fns}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><soapenv:Fault>\
<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail>\
<sf:LoginFault xsi:type=\"sf:LoginFault\"><sf:exceptionCode>{code}</sf:exceptionCode>\
<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>",
            fns = wsdl.fault_namespace()
        ),
    )
}

/// An API fault (`sf:UnexpectedErrorFault`) with its exception code.
fn fault(wsdl: Wsdl, faultcode: &str, code: &str, faultstring: &str) -> Response {
    let faultstring = xml_escape(faultstring);
    let message = faultstring.split_once(": ").map(|(_, m)| m.to_owned()).unwrap_or_else(|| faultstring.clone());
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" \
xmlns:sf=\"{fns}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body><soapenv:Fault>\
<faultcode>{faultcode}</faultcode><faultstring>{faultstring}</faultstring><detail>\
<sf:UnexpectedErrorFault xsi:type=\"sf:UnexpectedErrorFault\"><sf:exceptionCode>{code}</sf:exceptionCode>\
<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:UnexpectedErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>",
            fns = wsdl.fault_namespace()
        ),
    )
}

/// A `soapenv:Client` fault: the request itself is not understood.
fn client_fault(faultstring: &str) -> Response {
    xml(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\
<soapenv:Body><soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>{}</faultstring></soapenv:Fault>\
</soapenv:Body></soapenv:Envelope>",
            xml_escape(faultstring)
        ),
    )
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "").into_response()
}

fn xml(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml;charset=UTF-8"));
    r
}

/// The local name of the first element inside the SOAP `Body`.
fn operation(envelope: &str) -> Option<String> {
    let start = find_tag(envelope, "Body", 0)?;
    let rest = &envelope[start..];
    let mut i = 0;
    while let Some(lt) = rest[i..].find('<') {
        let tag = &rest[i + lt + 1..];
        i += lt + 1;
        if tag.starts_with('/') || tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        let name: String = tag.chars().take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/').collect();
        return Some(local(&name).to_owned());
    }
    None
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Index just after the start tag `<prefix:name …>` whose local name is `name`.
fn find_tag(s: &str, name: &str, from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(lt) = s[i..].find('<') {
        let at = i + lt + 1;
        let tag = &s[at..];
        let tag_name: String = tag.chars().take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/').collect();
        if !tag_name.starts_with('/') && local(&tag_name) == name {
            let end = tag.find('>')?;
            return Some(at + end + 1);
        }
        i = at;
    }
    None
}

/// The text of the first element with local name `name` (entities decoded).
fn element_text(s: &str, name: &str) -> Option<String> {
    let start = find_tag(s, name, 0)?;
    if s[..start].ends_with("/>") {
        return Some(String::new());
    }
    let end = s[start..].find('<')? + start;
    Some(xml_unescape(&s[start..end]))
}

fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let Some(semi) = after.find(';') else {
            out.push_str(&rest[amp..]);
            return out;
        };
        let entity = &after[..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => {
                u32::from_str_radix(&e[2..], 16).ok().and_then(char::from_u32)
            }
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_login_envelope_of_both_clients() {
        let ss = "<?xml version=\"1.0\" encoding=\"utf-8\" ?><env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:urn=\"urn:partner.soap.sforce.com\"><env:Header><urn:CallOptions><urn:client>simple-salesforce</urn:client></urn:CallOptions></env:Header><env:Body><n1:login xmlns:n1=\"urn:partner.soap.sforce.com\"><n1:username>a@b.c</n1:username><n1:password>p&amp;w&lt;1&#33;TOKEN</n1:password></n1:login></env:Body></env:Envelope>";
        assert_eq!(operation(ss).as_deref(), Some("login"));
        assert_eq!(element_text(ss, "username").as_deref(), Some("a@b.c"));
        assert_eq!(element_text(ss, "password").as_deref(), Some("p&w<1!TOKEN"));
        let jsf = "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Header/><se:Body><logout xmlns=\"urn:partner.soap.sforce.com\"/></se:Body></se:Envelope>";
        assert_eq!(operation(jsf).as_deref(), Some("logout"));
        assert_eq!(operation("not xml"), None);
        assert_eq!(xml_unescape("a&bogus;b&"), "a&bogus;b&");
    }
}
