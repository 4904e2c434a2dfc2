//! The query parameters every watch shares (`watch`, `resourceVersion`, `timeoutSeconds`,
//! `allowWatchBookmarks`, and `Last-Event-ID` for Server-Sent Events), checked into
//! [`WatchOptions`].

use axum::http::HeaderMap;
use std::time::Duration;

use super::stream::Format;
use super::WatchSettings;
use crate::error::FieldError;

/// The raw parameters, as the handlers' query structs hold them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawWatch<'a> {
    /// `resourceVersion`.
    pub resource_version: Option<&'a str>,
    /// `timeoutSeconds`.
    pub timeout_seconds: Option<&'a str>,
    /// `allowWatchBookmarks`.
    pub allow_watch_bookmarks: Option<&'a str>,
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Everything that matches now (as `ADDED`), then what changes.
    Now,
    /// The changes after this version (event id, for an event watch).
    After(i64),
}

/// A checked watch request.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// Where the stream starts.
    pub start: Start,
    /// When the stream ends by itself.
    pub timeout: Duration,
    /// Whether `BOOKMARK` events are sent (heartbeats take their place when not).
    pub bookmarks: bool,
    /// How events are framed.
    pub format: Format,
}

/// A boolean parameter (`true`/`1`, `false`/`0`); `None` when it says neither.
pub fn flag(raw: Option<&str>, default: bool) -> Option<bool> {
    match raw {
        None => Some(default),
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(_) => None,
    }
}

/// Whether `?watch=` asks for a watch; a field error when it is not a boolean.
pub fn wanted(raw: Option<&str>, errors: &mut Vec<FieldError>) -> bool {
    flag(raw, false).unwrap_or_else(|| {
        errors.push(FieldError::new("watch", "must be true or false"));
        false
    })
}

/// Checks the parameters; problems go to `errors` (a 422).
pub fn parse(
    raw: RawWatch<'_>,
    headers: &HeaderMap,
    settings: &WatchSettings,
    errors: &mut Vec<FieldError>,
) -> WatchOptions {
    let format = Format::from_accept(headers);
    let last_event_id = match format {
        Format::Sse => headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty()),
        Format::Ndjson => None,
    };
    WatchOptions {
        start: start(last_event_id.or(raw.resource_version), errors),
        timeout: timeout(raw.timeout_seconds, settings, errors),
        bookmarks: flag(raw.allow_watch_bookmarks, true).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "allowWatchBookmarks",
                "must be true or false",
            ));
            true
        }),
        format,
    }
}

fn start(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Start {
    match raw {
        None | Some("" | "0") => Start::Now,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => Start::After(n),
            _ => {
                errors.push(FieldError::new(
                    "resourceVersion",
                    "must be a resource version returned by the server",
                ));
                Start::Now
            }
        },
    }
}

fn timeout(raw: Option<&str>, settings: &WatchSettings, errors: &mut Vec<FieldError>) -> Duration {
    let max = settings.max_timeout.as_secs();
    match raw {
        None => settings.default_timeout,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Duration::from_secs(n),
            _ => {
                errors.push(FieldError::new(
                    "timeoutSeconds",
                    format!("must be an integer from 1 to {max}"),
                ));
                settings.default_timeout
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, HeaderValue};

    fn parsed(raw: RawWatch<'_>, headers: &HeaderMap) -> (WatchOptions, Vec<String>) {
        let mut errors = Vec::new();
        let options = parse(raw, headers, &WatchSettings::default(), &mut errors);
        (options, errors.into_iter().map(|e| e.path).collect())
    }

    #[test]
    fn defaults_start_now_with_bookmarks_as_ndjson() {
        let (o, errors) = parsed(RawWatch::default(), &HeaderMap::new());
        assert!(errors.is_empty());
        assert_eq!(o.start, Start::Now);
        assert!(o.bookmarks);
        assert_eq!(o.format, Format::Ndjson);
        assert_eq!(o.timeout, WatchSettings::default().default_timeout);
    }

    #[test]
    fn resource_version_zero_means_now_and_garbage_is_refused() {
        let raw = |rv| RawWatch {
            resource_version: Some(rv),
            ..RawWatch::default()
        };
        assert_eq!(parsed(raw("0"), &HeaderMap::new()).0.start, Start::Now);
        assert_eq!(
            parsed(raw("42"), &HeaderMap::new()).0.start,
            Start::After(42)
        );
        for bad in ["-1", "x", "1.5", "99999999999999999999"] {
            assert_eq!(parsed(raw(bad), &HeaderMap::new()).1, ["resourceVersion"]);
        }
    }

    #[test]
    fn timeouts_are_bounded() {
        let raw = |t| RawWatch {
            timeout_seconds: Some(t),
            ..RawWatch::default()
        };
        assert_eq!(
            parsed(raw("5"), &HeaderMap::new()).0.timeout,
            Duration::from_secs(5)
        );
        for bad in ["0", "3601", "-3", "soon"] {
            assert_eq!(parsed(raw(bad), &HeaderMap::new()).1, ["timeoutSeconds"]);
        }
    }

    #[test]
    fn server_sent_events_resume_from_last_event_id() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html, text/event-stream;q=0.9"),
        );
        headers.insert("last-event-id", HeaderValue::from_static("17"));
        let (o, _) = parsed(RawWatch::default(), &headers);
        assert_eq!(o.format, Format::Sse);
        assert_eq!(o.start, Start::After(17));
        let reopened = RawWatch {
            resource_version: Some("10"),
            ..RawWatch::default()
        };
        assert_eq!(parsed(reopened, &headers).0.start, Start::After(17));
    }

    #[test]
    fn flags_take_true_false_one_and_zero() {
        assert_eq!(flag(Some("1"), false), Some(true));
        assert_eq!(flag(Some("false"), true), Some(false));
        assert_eq!(flag(None, true), Some(true));
        assert_eq!(flag(Some("yes"), true), None);
    }
}
