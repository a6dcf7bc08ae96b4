"""Pure model and rules of the fleet: inventory, live fleet state, jobs and placements,
what looks wrong. No I/O; everything else imports this."""
