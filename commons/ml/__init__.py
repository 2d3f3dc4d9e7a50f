"""Machine-learning helpers: format conversion and demo data, kept free of the rest of Commons."""
