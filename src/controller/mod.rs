//! Work queue consumers.
