-- Schema version 1: settings, users, the component's state, its timers.
CREATE TABLE tenants (
    tenant   TEXT PRIMARY KEY,
    settings TEXT,
    revision INTEGER NOT NULL DEFAULT 0,
    max_keys INTEGER
);
CREATE TABLE users (
    tenant   TEXT NOT NULL,
    uid      TEXT NOT NULL,
    name     TEXT NOT NULL,
    presence INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (tenant, uid)
) WITHOUT ROWID;
CREATE TABLE state (
    tenant TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
CREATE TABLE timers (
    tenant TEXT NOT NULL,
    key    TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX timers_due ON timers (due_at);
