//! A panicking reconcile reported to Sentry. A binary of its own because the test installs
//! Sentry's client, which is process-wide: its panic hook would report any other test's panic
//! into this test's ingest (which asserts exactly one event), and its client would outlive the
//! test for every test after it.

mod sentry_panic;
