"""The console's own files: the SQLite store, the journal of plans, the audit log, plan
leases, and who is acting."""
