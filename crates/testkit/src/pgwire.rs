//! A TCP proxy in front of PostgreSQL that counts what its clients send, message by message, so
//! a bench can say how many round trips a request costs, pings included. sqlx's pool pings with
//! a lone `Sync`, which neither `pg_stat_statements` nor `log_statement` sees; on the wire every
//! round trip ends with a `Sync` (extended protocol) or is one `Query` (simple protocol).
//! Plain-text connections only (`sslmode=disable`, or a server that answers `N` to SSL).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What the proxy's clients sent so far, over every connection.
#[derive(Debug, Default)]
pub struct WireCounts {
    syncs: AtomicU64,
    pings: AtomicU64,
    queries: AtomicU64,
    executes: AtomicU64,
}

/// A snapshot of [`WireCounts`]; subtract two to count a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    /// `Sync` messages: one round trip of the extended protocol each (pings included).
    pub syncs: u64,
    /// `Sync` messages with nothing before them since the last one: pings.
    pub pings: u64,
    /// Simple-protocol `Query` messages (sqlx sends `BEGIN`/`COMMIT` this way).
    pub queries: u64,
    /// `Execute` messages: statements run through the extended protocol.
    pub executes: u64,
}

impl Counted {
    /// Round trips: every `Sync` and every simple `Query`.
    pub fn round_trips(&self) -> u64 {
        self.syncs + self.queries
    }

    /// Statements: extended `Execute`s and simple `Query`s.
    pub fn statements(&self) -> u64 {
        self.executes + self.queries
    }
}

impl std::ops::Sub for Counted {
    type Output = Counted;
    fn sub(self, before: Counted) -> Counted {
        Counted {
            syncs: self.syncs - before.syncs,
            pings: self.pings - before.pings,
            queries: self.queries - before.queries,
            executes: self.executes - before.executes,
        }
    }
}

impl WireCounts {
    /// The counts so far.
    pub fn snapshot(&self) -> Counted {
        Counted {
            syncs: self.syncs.load(Ordering::Relaxed),
            pings: self.pings.load(Ordering::Relaxed),
            queries: self.queries.load(Ordering::Relaxed),
            executes: self.executes.load(Ordering::Relaxed),
        }
    }
}

/// A counting proxy on 127.0.0.1 in front of `upstream` (`host:port`); runs until `stop`.
pub struct CountingProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// What they sent.
    pub counts: Arc<WireCounts>,
}

impl CountingProxy {
    /// Starts forwarding every connection to `upstream`.
    pub async fn start(upstream: String, stop: CancellationToken) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(WireCounts::default());
        let shared = counts.clone();
        tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => continue,
                    },
                };
                let (upstream, counts) = (upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        forward(client, server, counts).await;
                    }
                });
            }
        });
        Ok(Self { addr, counts })
    }
}

/// Copies both ways until either side closes, counting the client's messages.
async fn forward(client: TcpStream, server: TcpStream, counts: Arc<WireCounts>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    });
    let mut parser = Parser::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match client_read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        parser.feed(&buf[..n], &counts);
        if server_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    answers.abort();
}

/// The client side of the protocol, fed in whatever pieces TCP delivers.
#[derive(Debug, Default)]
struct Parser {
    /// Past the start-up message: every message now starts with a type byte.
    typed: bool,
    header: Vec<u8>,
    /// Bytes of the current message's body still to skip.
    skip: usize,
    /// A message other than `Sync` since the last `Sync` (else the next `Sync` is a ping).
    busy: bool,
}

/// The protocol version 3.0 code of a `StartupMessage`; SSL/GSS requests carry other codes.
const STARTUP_V3: u32 = 196_608;

impl Parser {
    fn feed(&mut self, mut data: &[u8], counts: &WireCounts) {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let want = if self.typed { 5 } else { 8 };
            let n = (want - self.header.len()).min(data.len());
            self.header.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.header.len() < want {
                return;
            }
            self.message(counts);
            self.header.clear();
        }
    }

    /// A complete header is in `self.header`: count it and skip its body.
    fn message(&mut self, counts: &WireCounts) {
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if !self.typed {
            let (len, code) = (be(&self.header[0..4]), be(&self.header[4..8]));
            self.skip = len.saturating_sub(8);
            self.typed = code as u32 == STARTUP_V3;
            return;
        }
        self.skip = be(&self.header[1..5]).saturating_sub(4);
        match self.header[0] {
            b'S' => {
                counts.syncs.fetch_add(1, Ordering::Relaxed);
                if !self.busy {
                    counts.pings.fetch_add(1, Ordering::Relaxed);
                }
                self.busy = false;
            }
            b'Q' => {
                counts.queries.fetch_add(1, Ordering::Relaxed);
            }
            b'E' => {
                counts.executes.fetch_add(1, Ordering::Relaxed);
                self.busy = true;
            }
            _ => self.busy = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![tag];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn counts_round_trips_pings_and_statements_whatever_the_split() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&8u32.to_be_bytes());
        wire.extend_from_slice(&80_877_103u32.to_be_bytes()); // SSLRequest
        let params = b"user\0postgres\0\0";
        wire.extend_from_slice(&((params.len() + 8) as u32).to_be_bytes());
        wire.extend_from_slice(&STARTUP_V3.to_be_bytes());
        wire.extend_from_slice(params);
        wire.extend(typed(b'S', b"")); // a ping
        wire.extend(typed(b'B', b"\0\0\0\0\0\0\0"));
        wire.extend(typed(b'E', b"\0\0\0\0\0"));
        wire.extend(typed(b'S', b""));
        wire.extend(typed(b'Q', b"BEGIN\0"));
        for chunk in [1, 3, 7, 1000] {
            let counts = WireCounts::default();
            let mut parser = Parser::default();
            for piece in wire.chunks(chunk) {
                parser.feed(piece, &counts);
            }
            let c = counts.snapshot();
            assert_eq!((c.syncs, c.pings, c.queries, c.executes), (2, 1, 1, 1));
            assert_eq!((c.round_trips(), c.statements()), (3, 2));
        }
    }
}
