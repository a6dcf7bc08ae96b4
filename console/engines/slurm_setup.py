"""A SlurmEngine from the inventory's `[engine] kind = "slurm"` section.

Kept apart from slurm.py so that module stays about Slurm, not about inventories: the
controller is either this machine (commands run locally) or an inventory node, reached over
SSH with that node's own settings (port, user, key, known_hosts).
"""

from __future__ import annotations

from console.engines.slurm import LocalRunner, SlurmEngine, SshRunner
from console.model.inventory import Inventory
from console.model.inventory import SlurmEngine as SlurmSettings


def slurm_engine(settings: SlurmSettings, inventory: Inventory) -> SlurmEngine:
    if settings.controller is None:
        runner = LocalRunner()
    else:
        node = inventory.node(settings.controller)
        ssh = node.ssh
        runner = SshRunner(node.host, port=ssh.port, user=ssh.user,
                           identity_file=ssh.identity_file, known_hosts=ssh.known_hosts,
                           connect_timeout=ssh.connect_timeout_s)
    return SlurmEngine(settings.partitions, runner)
