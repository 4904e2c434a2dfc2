//! Provider keys and adopted gateway tokens never reach the log. A binary of its own because the test installs the global
//! tracing subscriber (at TRACE, into memory) to read everything this process logs: in a shared
//! binary it would also take, and slow down, every other test's logging, and no other binary's
//! test could install a subscriber of its own.

mod adopt_secrets;
mod api_secrets;
mod channel_secrets;
