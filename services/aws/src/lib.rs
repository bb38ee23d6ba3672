//! AWS adapters for the core ports (skeleton; filled in by the roster issue).
