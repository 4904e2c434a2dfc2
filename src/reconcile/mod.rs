//! Reconcile engine.
