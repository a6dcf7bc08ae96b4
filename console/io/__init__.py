"""Console I/O: the things the console talks to over the network (SSH, the demo fleet)."""
