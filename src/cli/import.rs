//! `import`: takes over the fleet the old web app built (`docs/adoption.md`). With `--dry-run`
//! it lists the organization's apps named with the prefix: those in the web app's layout with
//! what adopting each would change, the others with the reason. Without it, it adopts the
//! selected apps (`--app`, repeatable, or `--all`) through the API's
//! `POST /v1/instances/{name}/adopt` with field manager `import`, each with the gateway token the
//! web app kept for it (`--tokens`: Fly secrets cannot be read back). It calls Fly only to list;
//! every write goes through the API, like any other client's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{json, Value};

use openclaws_server::config::FlySettings;
use openclaws_server::import::{fly_client, survey, Candidate, Verdict};

use super::{ApiArgs, ApiClient, CliError};

/// The field manager of the import's writes.
const FIELD_MANAGER: &str = "import";

/// `import`: what to list and what to adopt.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub fly: FlySettings,
    /// Endpoints are `https://{slug}.{domain}` (the hostname whose record and certificate are
    /// kept).
    #[arg(
        long,
        env = "OPENCLAWS_BASE_DOMAIN",
        value_name = "DOMAIN",
        default_value = "openclaws.biz"
    )]
    pub base_domain: String,
    #[command(flatten)]
    pub api: ApiArgs,
    /// List what would be adopted and changed; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Adopt this app (repeatable).
    #[arg(long = "app", value_name = "APP")]
    pub apps: Vec<String>,
    /// Adopt every app in the web app's layout.
    #[arg(long, conflicts_with = "apps")]
    pub all: bool,
    /// JSON file exported from the web app's database: `{"oc-slug": "gateway token"}`, or
    /// `{"oc-slug": {"gatewayToken": "…", "customerId": "…"}}` (the customer id defaults to the
    /// slug).
    #[arg(long, value_name = "FILE")]
    pub tokens: Option<PathBuf>,
}

/// What the web app's database says about one app. Holds a token: no `Debug`.
struct Exported {
    token: String,
    customer_id: Option<String>,
}

/// The page to print and whether every selected app was adopted.
pub async fn run(args: &ImportArgs) -> Result<(String, bool), CliError> {
    let fly = fly_client(&args.fly);
    let candidates = survey(&fly, &args.fly.fly_app_prefix, &args.base_domain)
        .await
        .map_err(|e| CliError::Import(format!("listing the apps at Fly failed: {e}")))?;
    if args.dry_run {
        return Ok((listing(&args.fly, &candidates), true));
    }
    if args.apps.is_empty() && !args.all {
        return Err(CliError::Import(
            "name the apps to adopt with --app (repeatable) or pass --all; --dry-run lists them"
                .to_owned(),
        ));
    }
    let path = args.tokens.as_ref().ok_or_else(|| {
        CliError::Import(
            "--tokens FILE is required to adopt (the web app's gateway tokens)".to_owned(),
        )
    })?;
    let exported = read_tokens(path)?;
    let client = ApiClient::new(&args.api.api_url, args.api.token.clone())?;
    let mut page = String::new();
    let mut all_ok = true;
    for app in selected(args, &candidates) {
        let line = adopt_one(&client, &candidates, &app, exported.get(&app)).await;
        all_ok &= line.is_ok();
        let _ = writeln!(page, "{}", line.unwrap_or_else(|e| e));
    }
    Ok((page, all_ok))
}

/// The apps to adopt: those named, or with `--all` every adoptable one.
fn selected(args: &ImportArgs, candidates: &[Candidate]) -> Vec<String> {
    match args.all {
        true => candidates
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Adoptable { .. }))
            .map(|c| c.app.clone())
            .collect(),
        false => args.apps.clone(),
    }
}

/// Adopts one app; the line to print, `Err` when it was not adopted.
async fn adopt_one(
    client: &ApiClient,
    candidates: &[Candidate],
    app: &str,
    exported: Option<&Exported>,
) -> Result<String, String> {
    let candidate = candidates
        .iter()
        .find(|c| c.app == app)
        .ok_or_else(|| format!("{app}: not adopted: no such app named with the prefix"))?;
    let (region, volume_size_gb) = match &candidate.verdict {
        Verdict::Adoptable {
            region,
            volume_size_gb,
            ..
        } => (region, volume_size_gb),
        Verdict::Refused(reason) => return Err(format!("{app}: not adopted: {reason}")),
    };
    let exported = exported
        .ok_or_else(|| format!("{app}: not adopted: no gateway token in the tokens file"))?;
    let slug = &candidate.slug;
    let body = json!({
        "app": app,
        "gatewayToken": exported.token,
        "spec": {
            "customerId": exported.customer_id.as_deref().unwrap_or(slug),
            "region": region,
            "volumeSizeGb": volume_size_gb,
        },
    });
    let path = format!("/v1/instances/{slug}/adopt");
    match client
        .post_json(&path, &[("fieldManager", FIELD_MANAGER)], &body)
        .await
    {
        Ok(_) => Ok(format!(
            "{app}: adopted as instance {slug} (follow it with: openclaws-controller describe {slug})"
        )),
        Err(e) => Err(format!("{app}: not adopted: {e}")),
    }
}

/// Reads the tokens file; its errors name the file and the entry, never a value.
fn read_tokens(path: &PathBuf) -> Result<BTreeMap<String, Exported>, CliError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Import(format!("cannot read --tokens {shown}: {e}")))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|_| CliError::Import(format!("--tokens {shown} is not JSON")))?;
    parse_tokens(&value).map_err(|entry| {
        CliError::Import(format!(
            "--tokens {shown}: entry {entry:?} must be a token string or \
             {{\"gatewayToken\": \"…\", \"customerId\": \"…\"}}"
        ))
    })
}

/// The tokens by app; `Err` names the first malformed entry (or `""` when the file is no object).
fn parse_tokens(value: &Value) -> Result<BTreeMap<String, Exported>, String> {
    let object = value.as_object().ok_or_else(String::new)?;
    let mut tokens = BTreeMap::new();
    for (app, entry) in object {
        let exported = match entry {
            Value::String(token) => Exported {
                token: token.clone(),
                customer_id: None,
            },
            Value::Object(o) => Exported {
                token: o
                    .get("gatewayToken")
                    .and_then(Value::as_str)
                    .ok_or_else(|| app.clone())?
                    .to_owned(),
                customer_id: o
                    .get("customerId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            },
            _ => return Err(app.clone()),
        };
        tokens.insert(app.clone(), exported);
    }
    Ok(tokens)
}

/// The dry run's page: every app named with the prefix, adoptable ones with their changes.
pub fn listing(fly: &FlySettings, candidates: &[Candidate]) -> String {
    let adoptable = candidates
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Adoptable { .. }))
        .count();
    let mut page = format!(
        "{} app(s) named {}* in organization {}: {adoptable} can be adopted (dry run: nothing written)\n",
        candidates.len(),
        fly.fly_app_prefix,
        fly.fly_org
    );
    for c in candidates {
        match &c.verdict {
            Verdict::Adoptable {
                region,
                volume_size_gb,
                changes,
            } => {
                let _ = writeln!(
                    page,
                    "\nADOPT   {} as instance {} (region {region}, volume {volume_size_gb} GB)",
                    c.app, c.slug
                );
                for change in changes {
                    let _ = writeln!(page, "  - {change}");
                }
            }
            Verdict::Refused(reason) => {
                let _ = writeln!(page, "\nSKIP    {}: {reason}", c.app);
            }
        }
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_strings_or_objects_and_errors_name_the_entry_only() {
        let tokens = parse_tokens(&json!({
            "oc-a": "tok-a",
            "oc-b": {"gatewayToken": "tok-b", "customerId": "cus_b"}
        }))
        .unwrap();
        assert_eq!(tokens["oc-a"].token, "tok-a");
        assert_eq!(tokens["oc-a"].customer_id, None);
        assert_eq!(tokens["oc-b"].customer_id.as_deref(), Some("cus_b"));
        assert_eq!(
            parse_tokens(&json!({"oc-c": 5})).err().as_deref(),
            Some("oc-c")
        );
        assert_eq!(
            parse_tokens(&json!({"oc-d": {"token": "secret-d"}}))
                .err()
                .as_deref(),
            Some("oc-d")
        );
        assert_eq!(parse_tokens(&json!(["x"])).err().as_deref(), Some(""));
    }
}
