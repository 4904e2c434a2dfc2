//! Support commands: `get` (a table of instances) and `describe NAME` (everything about one
//! instance, in the spirit of `kubectl describe`). They talk to the API over HTTP with a reader
//! (or writer) token, like any client, so they work against any deployment; the rendering is in
//! [`render`] as pure functions of the API's JSON.

pub mod client;
pub mod import;
pub mod release;
pub mod render;
pub mod watch;

use chrono::Utc;
use serde_json::Value;

pub use client::{ApiClient, CliError};

/// Where the API is and how to authenticate, shared by the support commands.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Base URL of the controller's API.
    #[arg(
        long,
        env = "OPENCLAWS_API_URL",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub api_url: String,
    /// Bearer token: the reader token is enough (prefer the environment variable, which does not
    /// show in the process list).
    #[arg(
        long,
        env = "OPENCLAWS_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// `get`: list instances.
#[derive(Debug, Clone, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Only instances of this customer.
    #[arg(long, value_name = "ID")]
    pub customer_id: Option<String>,
    /// Only instances in this phase (`Ready`, `Degraded`, `Failed`, ...).
    #[arg(long, value_name = "PHASE")]
    pub phase: Option<String>,
    /// Only instances whose labels match this Kubernetes label selector (`env=prod,tier in
    /// (web,api),!legacy`), as `kubectl get -l`.
    #[arg(short = 'l', long, value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Only instances whose `status.phase` and `spec.customerId` match this field selector
    /// (`status.phase!=Ready`).
    #[arg(long, value_name = "SELECTOR")]
    pub field_selector: Option<String>,
    /// After the table, print a line for each change as it happens (until interrupted).
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// `describe NAME`: one instance in detail.
#[derive(Debug, Clone, clap::Args)]
pub struct DescribeArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The instance name.
    pub name: String,
    /// How many of the newest events to show.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub events: u32,
}

/// Page size of `get` (the API's maximum).
const PAGE: &str = "1000";

/// Runs `get`: every page of the list, as one table.
pub async fn get(args: &GetArgs) -> Result<String, CliError> {
    let client = ApiClient::new(&args.api.api_url, args.api.token.clone())?;
    let (items, _) = list(&client, args).await?;
    Ok(render::instance_table(&items, Utc::now()))
}

/// Every page of the list and the first page's `metadata.resourceVersion` (a watch from it
/// misses no change).
pub async fn list(client: &ApiClient, args: &GetArgs) -> Result<(Vec<Value>, String), CliError> {
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut version: Option<String> = None;
    loop {
        let mut query: Vec<(&str, &str)> = vec![("limit", PAGE)];
        query.extend(filters(args));
        if let Some(c) = &cursor {
            query.push(("continue", c));
        }
        let page = client.get_json("/v1/instances", &query).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        if version.is_none() {
            version = page["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_owned);
        }
        cursor = page["metadata"]["continue"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok((items, version.unwrap_or_else(|| "0".to_owned())))
}

/// The `customerId` and `phase` query parameters of `args`.
fn filters(args: &GetArgs) -> Vec<(&'static str, &str)> {
    let mut query = Vec::new();
    if let Some(c) = &args.customer_id {
        query.push(("customerId", c.as_str()));
    }
    if let Some(p) = &args.phase {
        query.push(("phase", p.as_str()));
    }
    if let Some(l) = &args.selector {
        query.push(("labelSelector", l.as_str()));
    }
    if let Some(f) = &args.field_selector {
        query.push(("fieldSelector", f.as_str()));
    }
    query
}

/// Runs `describe`: the instance, its plan preview and its newest events. A plan or event list
/// the API cannot give (an older server) is shown as unavailable rather than failing the whole.
pub async fn describe(args: &DescribeArgs) -> Result<String, CliError> {
    let name = &args.name;
    if !openclaws_api::validate::valid_name(name) {
        return Err(CliError::InvalidName(name.clone()));
    }
    let client = ApiClient::new(&args.api.api_url, args.api.token.clone())?;
    let instance = client
        .get_json(&format!("/v1/instances/{name}"), &[])
        .await?;
    let plan = match client
        .get_json(&format!("/v1/instances/{name}/plan"), &[])
        .await
    {
        Ok(plan) => Ok(plan),
        Err(e @ (CliError::Unauthorized { .. } | CliError::Unreachable { .. })) => return Err(e),
        Err(e) => Err(e.to_string()),
    };
    let limit = args.events.to_string();
    let events = match client
        .get_json(
            &format!("/v1/instances/{name}/events"),
            &[("limit", &limit)],
        )
        .await
    {
        Ok(list) => Ok(list["items"].as_array().cloned().unwrap_or_default()),
        Err(e @ (CliError::Unauthorized { .. } | CliError::Unreachable { .. })) => return Err(e),
        Err(e) => Err(e.to_string()),
    };
    Ok(render::describe(
        &instance,
        plan.as_ref().map_err(String::as_str),
        events.as_deref().map_err(String::as_str),
        Utc::now(),
    ))
}
