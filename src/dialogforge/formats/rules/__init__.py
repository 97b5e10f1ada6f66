"""Target-format rules: what each training framework accepts, checked row by row."""
