"""Pure parsers of vendor SMI tool output: text in, device readings out, no I/O."""
