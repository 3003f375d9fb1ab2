"""One bundle: restore its archive, load its data profile, validate, diff and pack its outputs."""
