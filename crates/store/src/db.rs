//! The controller's handle on its database ([`Db`], and [`Conn`] for one connection or
//! transaction), which runs every statement the way `DATABASE_URL`'s pooler needs.
//!
//! Behind a transaction-mode pooler (Supabase's Supavisor on port 6543, PgBouncer with
//! `pool_mode = transaction`) a client connection gets a server connection for one transaction
//! at a time, and a statement outside a transaction is a transaction of its own. sqlx prepares a
//! statement in one round trip (Parse, Describe, Sync) and runs it in the next (Bind, Execute,
//! Sync), and names it `sqlx_s_N`, counting from 1 on every client connection. Through such a
//! pooler the second round trip may reach another server connection: one where the name does not
//! exist, where another client's statement has it ("already exists"), or where the unnamed
//! statement is another client's, which then runs with this statement's parameters and answers
//! without an error. `statement_cache_capacity(0)` does not help: sqlx 0.8 still names every
//! statement (and never closes it), and `persistent(false)` alone still splits the round trips.
//!
//! So in [`PoolMode::Transaction`] every statement is unnamed and runs inside an explicit
//! transaction, which holds one server connection from `BEGIN` to `COMMIT`: a statement run
//! outside one is wrapped in its own (`BEGIN`, the statement, `COMMIT`). In
//! [`PoolMode::Session`] (a direct connection, or a session pooler) statements are prepared once
//! per connection and cached, as sqlx does by default.
//!
//! What needs a session (`LISTEN`, session advisory locks, migrations: sqlx's migrator takes a
//! session advisory lock) does not go through a [`Db`]: it connects to `DATABASE_LISTEN_URL`.
//!
//! # Caveats
//! - sqlx looks up types it does not know (enums, domains, composite types) with named
//!   statements of its own; the schema has none, and adding one needs a look at this first.
//! - A raw pool (`sqlx::PgPool`) is still a plain session client: hand the controller a [`Db`].
//! - sqlx 0.8 (and 0.9.0) is not cancel-safe while an outermost `BEGIN` is in flight
//!   (launchbadge/sqlx#4393): a future dropped there (a reconcile abandoned when its lease is
//!   lost, a client that hangs up, a timeout) leaves the server session inside a transaction
//!   that nothing ends, and the pool hands that connection on: later statements run inside it,
//!   hold its locks and never commit. [`Db::begin`] therefore runs `BEGIN` to completion in a
//!   task of its own (a transaction whose caller went away is then rolled back as usual), and a
//!   connection whose own `BEGIN` (or wrapped statement) was cut off is closed, not pooled.

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use sqlx::error::BoxDynError;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgQueryResult, PgRow};
use sqlx::{Connection, Database, Describe, Either, Execute, Executor, Postgres};
use std::str::FromStr;
use std::sync::Arc;

use super::lanes::{LaneConn, Lanes, LANES};
use super::StoreError;

/// How the server behind `DATABASE_URL` lends its connections, which decides how statements
/// are sent ([module documentation](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PoolMode {
    /// A client connection is one server session for its whole life: a direct connection, or a
    /// session pooler (Supabase's Supavisor on port 5432). Statements are prepared and cached.
    #[default]
    Session,
    /// A server connection is lent for one transaction at a time (Supabase's Supavisor on port
    /// 6543, PgBouncer's `pool_mode = transaction`): every statement is unnamed and runs inside
    /// a transaction.
    Transaction,
}

impl FromStr for PoolMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "session" => Ok(Self::Session),
            "transaction" => Ok(Self::Transaction),
            other => Err(format!(
                "{other:?} is not a pool mode: `session` (a direct connection or a session \
                 pooler) or `transaction` (a transaction pooler)"
            )),
        }
    }
}

impl std::fmt::Display for PoolMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
        })
    }
}

/// How many read lanes a pool of `max_connections` gets on top of its own connections:
/// [`LANES`] on a session, none behind a transaction pooler (where a statement outside a
/// transaction is wrapped in one anyway) or for a pool of one connection.
fn lanes_for(max_connections: u32, mode: PoolMode) -> usize {
    match mode {
        PoolMode::Session if max_connections > 1 => LANES,
        _ => 0,
    }
}

/// A connection pool and the way its statements must be sent: what the API and the workers
/// share. Cheap to clone. `&Db` runs statements like `&PgPool` does ([`Executor`]).
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    mode: PoolMode,
    /// Connections for single-statement reads ([`Db::read`]).
    lanes: Arc<Lanes>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("mode", &self.mode)
            .field("size", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .finish()
    }
}

impl From<PgPool> for Db {
    /// A pool on a direct connection or a session pooler ([`PoolMode::Session`]).
    fn from(pool: PgPool) -> Self {
        Self::new(pool, PoolMode::Session)
    }
}

impl Db {
    /// Opens a pool of up to `max_connections` on `url`, connecting as `mode` needs: behind a
    /// transaction pooler no statement is cached, and `extra_float_digits` (a start-up
    /// parameter PgBouncer refuses unless told to ignore it) is not sent; sqlx reads floats in
    /// binary, where it changes nothing.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        mode: PoolMode,
    ) -> Result<Db, StoreError> {
        let mut options = PgConnectOptions::from_str(url)?;
        if mode == PoolMode::Transaction {
            options = options.statement_cache_capacity(0).extra_float_digits(None);
        }
        let pool = super::pool_options(max_connections)
            .connect_with(options)
            .await?;
        Ok(Self::new(pool, mode))
    }

    /// A handle on a pool made elsewhere, whose connections go through a `mode` pooler. Its
    /// read lanes ([`Db::read`]) are connections on top of the pool's own.
    pub fn new(pool: PgPool, mode: PoolMode) -> Db {
        let lanes = lanes_for(pool.options().get_max_connections(), mode);
        Self {
            pool,
            mode,
            lanes: Arc::new(Lanes::new(lanes)),
        }
    }

    /// A connection for one statement outside any transaction (the API's reads): a read lane
    /// when one is free, which costs no ping when it ends ([`crate::lanes`]), else a pooled
    /// connection. Call [`ReadConn::done`] when the read succeeded.
    pub async fn read(&self) -> Result<ReadConn, sqlx::Error> {
        let options = self.pool.connect_options();
        match self.lanes.take(&options).await? {
            Some(lane) => Ok(ReadConn::Lane(LaneConn::new(lane))),
            None => Ok(ReadConn::Pooled(self.acquire().await?)),
        }
    }

    /// How statements are sent.
    pub fn mode(&self) -> PoolMode {
        self.mode
    }

    /// A connection of the pool, outside any transaction.
    pub async fn acquire(&self) -> Result<Conn<'static>, sqlx::Error> {
        Ok(Conn {
            inner: Inner::Idle(Guarded::new(self.pool.acquire().await?)),
            mode: self.mode,
        })
    }

    /// Begins a transaction on a connection of the pool. Cancel-safe: `BEGIN` runs to the end
    /// in a task of its own, so a transaction begun for a caller that went away is dropped
    /// there, which rolls it back ([module documentation](self)).
    pub async fn begin(&self) -> Result<Conn<'static>, sqlx::Error> {
        let pool = self.pool.clone();
        let tx = tokio::spawn(async move { pool.begin().await })
            .await
            .map_err(|_| sqlx::Error::WorkerCrashed)??;
        Ok(Conn {
            inner: Inner::Tx(tx),
            mode: self.mode,
        })
    }

    /// Closes the pool (waits for connections in use to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One connection of a [`Db`]: idle (each statement commits on its own) or in a transaction
/// ([`Conn::begin`], [`Db::begin`]) that [`Conn::commit`] ends. `&mut Conn` runs statements like
/// `&mut PgConnection` does ([`Executor`]). Dropping a transaction rolls it back.
pub struct Conn<'c> {
    inner: Inner<'c>,
    mode: PoolMode,
}

enum Inner<'c> {
    Idle(Guarded),
    Tx(sqlx::Transaction<'c, Postgres>),
}

/// A pool connection that is closed instead of going back to the pool when it is dropped in
/// the middle of beginning a transaction on it: then the server may be inside a transaction
/// sqlx does not know of ([module documentation](self)).
struct Guarded {
    conn: PoolConnection<Postgres>,
    /// Set while a `BEGIN` of ours is on its way; cleared once it (or what it wraps) ended.
    cut_off: bool,
}

impl Guarded {
    fn new(conn: PoolConnection<Postgres>) -> Self {
        Self {
            conn,
            cut_off: false,
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if self.cut_off {
            tracing::debug!("a transaction's BEGIN was cut off: closing its connection");
            self.conn.close_on_drop();
        }
    }
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("mode", &self.mode)
            .field("in_transaction", &self.in_transaction())
            .finish()
    }
}

impl Conn<'_> {
    /// Begins a transaction on this connection (a savepoint inside a transaction).
    pub async fn begin(&mut self) -> Result<Conn<'_>, sqlx::Error> {
        let tx = match &mut self.inner {
            Inner::Idle(Guarded { conn, cut_off }) => {
                *cut_off = true;
                let tx = Connection::begin(&mut **conn).await?;
                *cut_off = false;
                tx
            }
            Inner::Tx(tx) => Connection::begin(&mut **tx).await?,
        };
        Ok(Conn {
            inner: Inner::Tx(tx),
            mode: self.mode,
        })
    }

    /// Commits the transaction; on an idle connection there is nothing to commit.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self.inner {
            Inner::Idle(_) => Ok(()),
            Inner::Tx(tx) => tx.commit().await,
        }
    }

    /// Rolls the transaction back; on an idle connection there is nothing to roll back.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self.inner {
            Inner::Idle(_) => Ok(()),
            Inner::Tx(tx) => tx.rollback().await,
        }
    }

    /// Whether statements run inside a transaction of this handle.
    pub fn in_transaction(&self) -> bool {
        matches!(self.inner, Inner::Tx(_))
    }
}

/// A statement sent unnamed: prepared and run, never kept on the server connection.
struct Unnamed<E>(E);

impl<'q, E: Execute<'q, Postgres>> Execute<'q, Postgres> for Unnamed<E> {
    fn sql(&self) -> &'q str {
        self.0.sql()
    }

    fn statement(&self) -> Option<&<Postgres as Database>::Statement<'q>> {
        self.0.statement()
    }

    fn take_arguments(
        &mut self,
    ) -> Result<Option<<Postgres as Database>::Arguments<'q>>, BoxDynError> {
        self.0.take_arguments()
    }

    fn persistent(&self) -> bool {
        false
    }
}

type Step = Either<PgQueryResult, PgRow>;

/// Runs `query` unnamed in a transaction of its own on `conn` (rows are gathered before the
/// commit, so a failed commit is the statement's error). Cut off before the end, the connection
/// is closed rather than pooled.
fn own_transaction_many<'e, 'q: 'e, E>(
    conn: &'e mut Guarded,
    query: E,
) -> BoxStream<'e, Result<Step, sqlx::Error>>
where
    E: 'q + Execute<'q, Postgres>,
{
    futures_util::stream::once(async move {
        let Guarded { conn, cut_off } = conn;
        *cut_off = true;
        let steps = async {
            let mut tx = Connection::begin(&mut **conn).await?;
            let steps: Vec<Step> = (&mut *tx).fetch_many(Unnamed(query)).try_collect().await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(steps)
        }
        .await;
        *cut_off = false;
        Ok::<_, sqlx::Error>(futures_util::stream::iter(steps?.into_iter().map(Ok)))
    })
    .try_flatten()
    .boxed()
}

/// [`own_transaction_many`]'s first row (its rows are all read inside the transaction, which
/// has ended when the first one is seen).
fn own_transaction_optional<'e, 'q: 'e, E>(
    conn: &'e mut Guarded,
    query: E,
) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
where
    E: 'q + Execute<'q, Postgres>,
{
    Box::pin(async move {
        let mut steps = own_transaction_many(conn, query);
        while let Some(step) = steps.try_next().await? {
            if let Either::Right(row) = step {
                return Ok(Some(row));
            }
        }
        Ok(None)
    })
}

/// The error of asking a transaction pooler for what needs a session.
fn needs_session(what: &str) -> sqlx::Error {
    sqlx::Error::Configuration(
        format!("{what} needs a session: not available through a transaction pooler").into(),
    )
}

impl<'c> Executor<'c> for &'c Db {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        match self.mode {
            PoolMode::Session => self.pool.fetch_many(query),
            PoolMode::Transaction => {
                let pool = self.pool.clone();
                futures_util::stream::once(async move {
                    let mut conn = Guarded::new(pool.acquire().await?);
                    let steps: Vec<Step> =
                        own_transaction_many(&mut conn, query).try_collect().await?;
                    Ok::<_, sqlx::Error>(futures_util::stream::iter(steps.into_iter().map(Ok)))
                })
                .try_flatten()
                .boxed()
            }
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        match self.mode {
            PoolMode::Session => self.pool.fetch_optional(query),
            PoolMode::Transaction => {
                let pool = self.pool.clone();
                Box::pin(async move {
                    let mut conn = Guarded::new(pool.acquire().await?);
                    own_transaction_optional(&mut conn, query).await
                })
            }
        }
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [<Postgres as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<Postgres as Database>::Statement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self.mode {
            PoolMode::Session => self.pool.prepare_with(sql, parameters),
            PoolMode::Transaction => Box::pin(async { Err(needs_session("a prepared statement")) }),
        }
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'c: 'e,
    {
        match self.mode {
            PoolMode::Session => self.pool.describe(sql),
            PoolMode::Transaction => {
                Box::pin(async { Err(needs_session("describing a statement")) })
            }
        }
    }
}

impl<'a, 'c> Executor<'a> for &'a mut Conn<'c> {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, sqlx::Error>>
    where
        'a: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        match (self.mode, &mut self.inner) {
            (PoolMode::Session, Inner::Idle(idle)) => (&mut *idle.conn).fetch_many(query),
            (PoolMode::Session, Inner::Tx(tx)) => (&mut **tx).fetch_many(query),
            (PoolMode::Transaction, Inner::Idle(conn)) => own_transaction_many(conn, query),
            (PoolMode::Transaction, Inner::Tx(tx)) => (&mut **tx).fetch_many(Unnamed(query)),
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'a: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        match (self.mode, &mut self.inner) {
            (PoolMode::Session, Inner::Idle(idle)) => (&mut *idle.conn).fetch_optional(query),
            (PoolMode::Session, Inner::Tx(tx)) => (&mut **tx).fetch_optional(query),
            (PoolMode::Transaction, Inner::Idle(conn)) => own_transaction_optional(conn, query),
            (PoolMode::Transaction, Inner::Tx(tx)) => (&mut **tx).fetch_optional(Unnamed(query)),
        }
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [<Postgres as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<Postgres as Database>::Statement<'q>, sqlx::Error>>
    where
        'a: 'e,
    {
        match (self.mode, &mut self.inner) {
            (PoolMode::Session, Inner::Idle(idle)) => {
                (&mut *idle.conn).prepare_with(sql, parameters)
            }
            (PoolMode::Session, Inner::Tx(tx)) => (&mut **tx).prepare_with(sql, parameters),
            (PoolMode::Transaction, _) => {
                Box::pin(async { Err(needs_session("a prepared statement")) })
            }
        }
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'a: 'e,
    {
        match (self.mode, &mut self.inner) {
            (PoolMode::Session, Inner::Idle(idle)) => (&mut *idle.conn).describe(sql),
            (PoolMode::Session, Inner::Tx(tx)) => (&mut **tx).describe(sql),
            (PoolMode::Transaction, _) => {
                Box::pin(async { Err(needs_session("describing a statement")) })
            }
        }
    }
}

/// A connection for one read: a lane, or a pooled connection when every lane was busy.
/// `&mut ReadConn` runs statements like `&mut PgConnection` does. Call [`ReadConn::done`] once
/// the read succeeded, so the lane is reused without a ping.
pub enum ReadConn {
    /// A lane, locked for this read.
    Lane(LaneConn),
    /// A pooled connection.
    Pooled(Conn<'static>),
}

impl ReadConn {
    /// Marks the read as ended clean: the lane's next read needs no ping.
    pub fn done(self) {
        if let ReadConn::Lane(lane) = self {
            lane.done();
        }
    }
}

impl std::fmt::Debug for ReadConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadConn::Lane(_) => "ReadConn::Lane",
            ReadConn::Pooled(_) => "ReadConn::Pooled",
        })
    }
}

impl<'a> Executor<'a> for &'a mut ReadConn {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, Result<Step, sqlx::Error>>
    where
        'a: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        match self {
            ReadConn::Lane(lane) => lane.conn().fetch_many(query),
            ReadConn::Pooled(conn) => conn.fetch_many(query),
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        'a: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        match self {
            ReadConn::Lane(lane) => lane.conn().fetch_optional(query),
            ReadConn::Pooled(conn) => conn.fetch_optional(query),
        }
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [<Postgres as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<Postgres as Database>::Statement<'q>, sqlx::Error>>
    where
        'a: 'e,
    {
        match self {
            ReadConn::Lane(lane) => lane.conn().prepare_with(sql, parameters),
            ReadConn::Pooled(conn) => conn.prepare_with(sql, parameters),
        }
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>>
    where
        'a: 'e,
    {
        match self {
            ReadConn::Lane(lane) => lane.conn().describe(sql),
            ReadConn::Pooled(conn) => conn.describe(sql),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_modes_parse_and_print() {
        for mode in [PoolMode::Session, PoolMode::Transaction] {
            assert_eq!(mode.to_string().parse::<PoolMode>(), Ok(mode));
        }
        assert!("statement".parse::<PoolMode>().is_err());
        assert_eq!(PoolMode::default(), PoolMode::Session);
    }
}
