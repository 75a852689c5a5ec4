"""The command line: thin commands over the library, errors mapped to exit codes once."""
