//! A TCP proxy whose answers can be held back: a test cuts a client off between sending a
//! request and reading its answer (a `BEGIN` the server ran but the client has not heard of)
//! without touching the server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A proxy on 127.0.0.1 in front of `upstream`; stops when dropped.
pub struct PausableProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    held: watch::Sender<bool>,
    trigger: Trigger,
    stop: CancellationToken,
}

/// Bytes of a request that, once a client sends them, hold answers back.
type Trigger = Arc<Mutex<Option<Vec<u8>>>>;

impl PausableProxy {
    /// Starts forwarding every connection to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (held, _) = watch::channel(false);
        let stop = CancellationToken::new();
        let trigger = Trigger::default();
        let (answers, until, armed) = (held.clone(), stop.clone(), trigger.clone());
        tokio::spawn(async move {
            loop {
                let client = tokio::select! {
                    _ = until.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok((client, _)) => client,
                        Err(_) => return,
                    },
                };
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let hold = Hold {
                    held: answers.clone(),
                    trigger: armed.clone(),
                };
                tokio::spawn(forward(client, server, hold, until.clone()));
            }
        });
        Self {
            addr,
            held,
            trigger,
            stop,
        }
    }

    /// Holds answers back from the moment a client sends a request containing `request` (for
    /// example `b"BEGIN"`), until [`Self::release_answers`]: what the client sent before still
    /// gets its answers.
    pub fn hold_answers_from(&self, request: &[u8]) {
        *self.trigger.lock().unwrap() = Some(request.to_vec());
    }

    /// Lets answers (held ones first) through again.
    pub fn release_answers(&self) {
        self.trigger.lock().unwrap().take();
        self.held.send_replace(false);
    }
}

impl Drop for PausableProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What a connection's forwarding needs to hold answers back.
struct Hold {
    held: watch::Sender<bool>,
    trigger: Trigger,
}

impl Hold {
    /// Holds answers when `request` contains the armed trigger (and disarms it).
    fn on_request(&self, request: &[u8]) {
        let mut trigger = self.trigger.lock().unwrap();
        let hit = trigger
            .as_deref()
            .is_some_and(|t| request.windows(t.len()).any(|w| w == t));
        if hit {
            trigger.take();
            self.held.send_replace(true);
        }
    }
}

async fn forward(client: TcpStream, server: TcpStream, hold: Hold, stop: CancellationToken) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut held = hold.held.subscribe();
    let requests = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            hold.on_request(&buf[..n]);
            server_write.write_all(&buf[..n]).await?;
        }
    };
    let answers = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = server_read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            if held.wait_for(|held| !*held).await.is_err() {
                return Ok(());
            }
            client_write.write_all(&buf[..n]).await?;
        }
    };
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = requests => {}
        _ = answers => {}
    }
}
