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

pub(crate) fn playground_summary(info: &PlaygroundInfo, info_file: Option<&Path>) {
    let mut out = String::new();
    out.push_str("forcelink playground is running (an offline Salesforce-compatible org)\n\n");
    out.push_str(&format!("  login URL       {}\n", info.login_url));
    out.push_str(&format!("  instance URL    {}   (My Domain: client credentials, API calls)\n", info.instance_url));
    out.push_str(&format!("  control API     {}   (Authorization: Bearer <control key>)\n", info.control_url));
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
