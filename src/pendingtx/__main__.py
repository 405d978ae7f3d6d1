"""`python -m pendingtx`: the same command line as the `pendingtx` entry point."""

from pendingtx.cli import main

if __name__ == "__main__":
    main(prog_name="pendingtx")
