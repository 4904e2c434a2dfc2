//! Controller-side reads and status writes.
