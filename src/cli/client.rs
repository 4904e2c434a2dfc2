//! A small client of the controller's API for the support commands (reads) and the import
//! (adoption writes), with errors that say what to do (wrong address, missing token, unknown
//! instance).

use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// How long one request may take before the API counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(15);
/// How long a watch may stay silent (the API sends a bookmark every 15 s by default) before
/// it counts as broken and is opened again.
const WATCH_SILENCE: Duration = Duration::from_secs(60);

/// Why a support command could not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The address is not an http(s) URL.
    #[error("--api-url {0:?} is not an http(s) URL")]
    InvalidUrl(String),
    /// No answer: nothing listens there, a timeout, DNS.
    #[error(
        "cannot reach the API at {url}: {reason}; is the controller running there? \
         (set --api-url or OPENCLAWS_API_URL)"
    )]
    Unreachable { url: String, reason: String },
    /// 401: no token or an unknown one.
    #[error(
        "the API at {url} refused {}: pass the reader or writer token with --token or \
         OPENCLAWS_API_TOKEN", if *.token_given { "the token (401)" } else { "a request without a token (401)" }
    )]
    Unauthorized { url: String, token_given: bool },
    /// The name cannot be an instance name (checked before asking).
    #[error(
        "{0:?} is not an instance name: a DNS label of 3-40 characters [a-z0-9-], not starting \
         or ending with '-'"
    )]
    InvalidName(String),
    /// 404, with the API's message (`instance NAME not found`).
    #[error("{0}")]
    NotFound(String),
    /// Any other error answer, with the API's message.
    #[error("the API answered {status}: {message}")]
    Api { status: u16, message: String },
    /// A success that is not JSON (not this API?).
    #[error("the API at {url} answered something that is not JSON ({status})")]
    NotJson { url: String, status: u16 },
    /// 410 to a watch: the version it resumed from is no longer kept; list again.
    #[error("{0}")]
    Gone(String),
    /// The import could not run (its settings, its tokens file, listing Fly).
    #[error("{0}")]
    Import(String),
    /// Writing the output failed (a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// The API's base URL and the token to present.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// For watches: no limit on the whole response, one on silence.
    streaming: reqwest::Client,
}

impl ApiClient {
    /// A client of the API at `base` (`http://host:port`, any trailing `/` ignored).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, CliError> {
        let parsed =
            reqwest::Url::parse(base).map_err(|_| CliError::InvalidUrl(base.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(CliError::InvalidUrl(base.to_owned()));
        }
        let unreachable = |e: reqwest::Error| CliError::Unreachable {
            url: base.to_owned(),
            reason: root_cause(&e),
        };
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(unreachable)?;
        let streaming = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .read_timeout(WATCH_SILENCE)
            .build()
            .map_err(unreachable)?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.trim().is_empty()),
            http,
            streaming,
        })
    }

    /// Opens `GET {base}{path}?{query}` as a stream (a watch); refusals become [`CliError`]s,
    /// 410 [`CliError::Gone`].
    pub async fn open_stream(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<reqwest::Response, CliError> {
        let mut request = self
            .streaming
            .get(format!("{}{path}", self.base))
            .query(query);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body: Option<Value> = response.json().await.ok();
        let message = body
            .as_ref()
            .and_then(|b| b["error"]["message"].as_str())
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("request failed"))
            .to_owned();
        Err(match status {
            StatusCode::GONE => CliError::Gone(message),
            StatusCode::UNAUTHORIZED => CliError::Unauthorized {
                url: self.base.clone(),
                token_given: self.token.is_some(),
            },
            s => CliError::Api {
                status: s.as_u16(),
                message,
            },
        })
    }

    /// `GET {base}{path}?{query}` as JSON; non-2xx answers become [`CliError`]s carrying the
    /// API's own message.
    pub async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, CliError> {
        let request = self.http.get(format!("{}{path}", self.base)).query(query);
        self.send(request, path).await
    }

    /// `POST {base}{path}?{query}` with a JSON body (the import's writes); answers as
    /// [`ApiClient::get_json`].
    pub async fn post_json(
        &self,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<Value, CliError> {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .query(query)
            .json(body);
        self.send(request, path).await
    }

    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<Value, CliError> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| CliError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        let status = response.status();
        let body: Option<Value> = response.json().await.ok();
        let message = body
            .as_ref()
            .and_then(|b| b["error"]["message"].as_str())
            .map(str::to_owned);
        match status {
            s if s.is_success() => body.ok_or(CliError::NotJson {
                url: self.base.clone(),
                status: s.as_u16(),
            }),
            StatusCode::UNAUTHORIZED => Err(CliError::Unauthorized {
                url: self.base.clone(),
                token_given: self.token.is_some(),
            }),
            StatusCode::NOT_FOUND => Err(CliError::NotFound(
                message.unwrap_or_else(|| format!("{path} not found")),
            )),
            s => Err(CliError::Api {
                status: s.as_u16(),
                message: message
                    .unwrap_or_else(|| s.canonical_reason().unwrap_or("request failed").to_owned()),
            }),
        }
    }
}

/// The innermost cause of a transport error ("Connection refused", "operation timed out"), which
/// says more than reqwest's outer "error sending request".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(ApiClient::new("http://127.0.0.1:8080/", None).is_ok());
        assert!(ApiClient::new("https://api.example.com", Some("t".into())).is_ok());
        for bad in ["127.0.0.1:8080", "ftp://x", "not a url", ""] {
            assert!(
                matches!(ApiClient::new(bad, None), Err(CliError::InvalidUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn unauthorized_says_whether_a_token_was_sent() {
        let with = CliError::Unauthorized {
            url: "http://x".into(),
            token_given: true,
        };
        let without = CliError::Unauthorized {
            url: "http://x".into(),
            token_given: false,
        };
        assert!(with.to_string().contains("refused the token"));
        assert!(without.to_string().contains("without a token"));
        assert!(without.to_string().contains("OPENCLAWS_API_TOKEN"));
    }
}
