// Switchboard console: built by console/scripts/bundle.mjs (placeholder)
