"""The pure clinical core: data in, decisions out. No I/O, no adapter imports, no wall clock."""
