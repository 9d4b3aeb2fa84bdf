//! `forcelink keygen`: an RSA key (mode 0600) and a self-signed certificate for the JWT flow.

use std::io::Write;
use std::path::{Path, PathBuf};

use forcelink_auth::keys::{DEFAULT_VALIDITY_DAYS, generate_jwt_key_pair};
use serde_json::json;

use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Directory for the files (default: $XDG_DATA_HOME/forcelink/keys).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// File name stem: NAME.key and NAME.crt.
    #[arg(long, default_value = "forcelink-jwt")]
    pub name: String,
    /// Certificate common name.
    #[arg(long, default_value = "forcelink")]
    pub common_name: String,
    /// Certificate validity in days.
    #[arg(long, default_value_t = DEFAULT_VALIDITY_DAYS)]
    pub days: u32,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(settings: &Settings, args: KeygenArgs) -> Result<Outcome, Failure> {
    if args.name.is_empty() || args.name.contains(['/', '\\']) || args.name.starts_with('.') {
        return Err(Failure::usage(format!("--name {:?} must be a plain file name", args.name)));
    }
    let dir = match args.out {
        Some(d) => d,
        None => settings.data_dir.join("keys"),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Failure::failed(format!("creating {}: {e}", dir.display())))?;
    let key_path = dir.join(format!("{}.key", args.name));
    let cert_path = dir.join(format!("{}.crt", args.name));
    if !args.force {
        for p in [&key_path, &cert_path] {
            if p.exists() {
                return Err(Failure::usage(format!("{} exists", p.display())).with_fix(
                    "pass --force to replace it (connections using the old key stop working), or choose --name",
                ));
            }
        }
    }
    #[allow(clippy::disallowed_methods)] // the binary reads the wall clock
    let now = std::time::SystemTime::now();
    let pair = generate_jwt_key_pair(&args.common_name, args.days, now)?;
    write_private(&key_path, pair.private_key_pem.secret().as_bytes())?;
    std::fs::write(&cert_path, pair.certificate_pem.as_bytes())
        .map_err(|e| Failure::failed(format!("writing {}: {e}", cert_path.display())))?;
    let human = format!(
        "wrote the private key {} (mode 0600; keep it secret)\nwrote the certificate {}\n\nnext:\n  1. Upload the certificate to the connected app (Setup > App Manager > the app > Edit > \"Use digital signatures\").\n  2. forcelink login jwt NAME --token-url https://MyDomain.my.salesforce.com --client-id CONSUMER_KEY \\\n       --username USER --private-key file:{}\n     (add --environment sandbox for a sandbox: the JWT audience follows the login URL)\n",
        key_path.display(),
        cert_path.display(),
        key_path.display()
    );
    Ok(Outcome::new(
        json!({ "private_key": key_path, "certificate": cert_path, "valid_days": args.days, "common_name": args.common_name }),
        human,
    ))
}

/// Writes a new file readable by its owner only (created so, never widened afterwards).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::failed(format!("writing {}: {e}", path.display()));
    let tmp = path.with_extension("key.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(fail)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
