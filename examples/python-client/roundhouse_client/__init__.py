"""A minimal Roundhouse client in standard-library Python: see README.md beside this package."""
