//! hyper answers a request head it cannot parse (malformed HTTP: 400; a request target of 64 KiB
//! or more: 414; a head over [`crate::listen::MAX_HEAD_BYTES`] or with too many fields: 431)
//! itself, before any service runs, with a bare status line and `content-length: 0`. The
//! connection wrapper here rewrites exactly those answers into the API's JSON error shape on
//! their way out, so every error the service returns has the same body whatever layer refused
//! the request.
//!
//! hyper writes such an answer as one head with no body and then closes the connection; the API's
//! own errors always carry a JSON body, so a bodiless 400/414/431 head can only be hyper's.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::edge::{MAX_HEADERS, MAX_HEADER_BYTES, MAX_URI_BYTES};
use crate::error::{ErrorBody, ErrorDetail};

/// A connection whose bodiless parse-error answers from hyper go out in the JSON error shape.
#[derive(Debug)]
pub struct JsonHeadErrors<S> {
    inner: S,
    /// A rewritten answer still being written, and how much of it is out.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonHeadErrors<S> {
    /// Wraps an accepted connection.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> JsonHeadErrors<S> {
    /// Writes out the rest of a rewritten answer.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
            if *written == bytes.len() {
                self.pending = None;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonHeadErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonHeadErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        match rewrite(buf) {
            Some(answer) => {
                self.pending = Some((answer, 0));
                // The rewritten answer stands for all of hyper's bytes; what is not out yet
                // goes out on the next write or flush.
                let _ = self.poll_pending(cx)?;
                Poll::Ready(Ok(buf.len()))
            }
            None => Pin::new(&mut self.inner).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next()) {
            if rewrite(only).is_some() {
                return self.poll_write(cx, only);
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The JSON answer standing for `written` when it is hyper's own bodiless parse-error answer.
pub fn rewrite(written: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(written).ok()?;
    let head = head.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let (code, message) = match status_line.strip_prefix("HTTP/1.1 ")?.get(..3)? {
        "400" => ("bad_request", "the request is not well-formed HTTP/1.1".to_owned()),
        "414" => (
            "uri_too_long",
            format!("the request URL is longer than {MAX_URI_BYTES} bytes"),
        ),
        "431" => (
            "headers_too_large",
            format!("the request has more than {MAX_HEADERS} header fields or {MAX_HEADER_BYTES} bytes of headers"),
        ),
        _ => return None,
    };
    let headers: Vec<&str> = lines.collect();
    let bodiless = headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("content-length: 0"));
    if !bodiless {
        return None;
    }
    let body = serde_json::to_vec(&ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message,
            fields: Vec::new(),
            resource_version: None,
            reason: None,
        },
    })
    .ok()?;
    let mut answer = format!("{status_line}\r\n");
    for header in headers.iter().filter(|h| !is_length_or_type(h)) {
        answer.push_str(header);
        answer.push_str("\r\n");
    }
    answer.push_str("content-type: application/json\r\n");
    answer.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

fn is_length_or_type(header: &str) -> bool {
    let name = header.split(':').next().unwrap_or_default();
    name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("content-type")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(answer: &[u8]) -> (String, serde_json::Value) {
        let text = String::from_utf8(answer.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length = format!("content-length: {}", body.len());
        assert!(head.contains(&length), "{head}");
        (head.to_owned(), serde_json::from_str(body).unwrap())
    }

    #[test]
    fn hypers_bodiless_parse_errors_get_the_json_shape() {
        for (status, code) in [
            ("400 Bad Request", "bad_request"),
            ("414 URI Too Long", "uri_too_long"),
            ("431 Request Header Fields Too Large", "headers_too_large"),
        ] {
            let hyper = format!(
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\ndate: Mon, 30 Nov 2026 17:00:00 GMT\r\n\r\n"
            );
            let (head, body) = split(&rewrite(hyper.as_bytes()).expect("rewritten"));
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{head}"
            );
            assert!(head.contains("date: Mon, 30 Nov 2026"), "{head}");
            assert!(head.contains("content-type: application/json"), "{head}");
            assert_eq!(body["error"]["code"], code);
        }
    }

    #[test]
    fn answers_with_a_body_or_another_status_pass_unchanged() {
        let passing = [
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 414 URI",
            "",
        ];
        for written in passing {
            assert_eq!(rewrite(written.as_bytes()), None, "{written:?}");
        }
        assert_eq!(rewrite(&[0xff, 0xfe]), None);
    }
}
