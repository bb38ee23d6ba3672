//! Lambda event handling shared by the function binaries in `src/bin/` (skeleton).
