//! `POST /machines/{id}/exec`: inert machines run nothing, so a pluggable handler answers; in
//! process mode the command runs for real in the machine's environment. The answer is a
//! `flydv1.ExecResponse`, as JSON or (with [`crate::SimConfig::exec_octet_stream`]) as
//! `application/octet-stream`, both of which the document declares.

use super::auth::Caller;
use super::errors::{SimError, SimResult};
use super::extract::JsonBody;
use super::wire::{ExecResponse, MachineExecRequest};
use super::Simulator;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::time::Duration;

/// One exec request as the handler sees it.
#[derive(Debug, Clone)]
pub struct ExecCall {
    /// App name.
    pub app: String,
    /// Machine id.
    pub machine_id: String,
    /// Image the machine runs.
    pub image: String,
    /// argv.
    pub command: Vec<String>,
    /// Requested timeout.
    pub timeout: Duration,
}

/// What an exec produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// The command ran.
    Done {
        /// Exit status.
        exit_code: i32,
        /// Captured stdout.
        stdout: String,
        /// Captured stderr.
        stderr: String,
    },
    /// The command exceeded its timeout (answered as 408).
    TimedOut,
}

/// Decides what an exec on a simulated machine returns (tests script gateway CLI output here).
pub trait ExecHandler: Send + Sync + 'static {
    /// Runs `call` and reports the result.
    fn exec(&self, call: &ExecCall) -> ExecOutcome;
}

/// The default handler: every command exits 0 with no output.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExitZero;

impl ExecHandler for ExitZero {
    fn exec(&self, _call: &ExecCall) -> ExecOutcome {
        ExecOutcome::Done {
            exit_code: 0,
            stdout: String::new(),
            stderr: String::new(),
        }
    }
}

/// The answer to an exec that ran, in the content type the simulator is set to answer with.
fn answer(sim: &Simulator, exit_code: i32, stdout: String, stderr: String) -> Response {
    let body = ExecResponse {
        exit_code: Some(i64::from(exit_code)),
        exit_signal: Some(0),
        stdout: Some(stdout),
        stderr: Some(stderr),
    };
    if !sim.config().exec_octet_stream {
        return Json(body).into_response();
    }
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

/// `POST /v1/apps/{app}/machines/{id}/exec`.
pub async fn exec(
    State(sim): State<Simulator>,
    Extension(caller): Extension<Caller>,
    Path((app, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<MachineExecRequest>,
) -> SimResult<Response> {
    let command = match (body.command, body.cmd) {
        (c, _) if !c.is_empty() => c,
        (_, Some(c)) if !c.trim().is_empty() => c.split_whitespace().map(str::to_string).collect(),
        _ => return Err(SimError::invalid("command is required")),
    };
    let image = sim.read(|w, ctx| {
        let app_ref = w.app_ref(&app, &caller, ctx)?;
        let m = w.machine(&app_ref, &id, ctx)?;
        m.require_host()?;
        if m.state != "started" {
            return Err(SimError::precondition(format!(
                "machine {} is not started (state '{}')",
                m.id, m.state
            )));
        }
        Ok(m.config.image.clone().unwrap_or_default())
    })?;
    let timeout = Duration::from_secs(
        body.timeout
            .and_then(|t| u64::try_from(t).ok())
            .unwrap_or(30),
    );
    if let Some(host) = sim.process_host() {
        let (exit_code, stdout, stderr) = host.exec(&id, &command, timeout).await?;
        return Ok(answer(&sim, exit_code, stdout, stderr));
    }
    let call = ExecCall {
        app,
        machine_id: id,
        image,
        command,
        timeout,
    };
    match sim.config().exec.exec(&call) {
        ExecOutcome::Done {
            exit_code,
            stdout,
            stderr,
        } => Ok(answer(&sim, exit_code, stdout, stderr)),
        ExecOutcome::TimedOut => Err(SimError::Timeout(
            "deadline_exceeded: exec timed out".into(),
        )),
    }
}
