-- Schema version 2: timers are leased while they fire (so a process that
-- dies mid-call leaves them to fire again) and count failed calls; the
-- component's log lines are kept.
ALTER TABLE timers ADD COLUMN lease INTEGER;
ALTER TABLE timers ADD COLUMN lease_until INTEGER;
ALTER TABLE timers ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
CREATE TABLE logs (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    at     INTEGER NOT NULL,
    level  INTEGER NOT NULL,
    line   TEXT NOT NULL
);
CREATE INDEX logs_tenant ON logs (tenant, id);
