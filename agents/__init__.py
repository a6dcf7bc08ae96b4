"""fleetops node agent: collectors, health rules and the wire protocol.

Never imports `console` or Textual: the agent runs on GPU nodes with as little as it can.
"""

__version__ = "0.1.0"
