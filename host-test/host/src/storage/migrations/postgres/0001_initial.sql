-- Schema version 1: settings, users, the component's state, its timers.
CREATE TABLE tenants (
    tenant   TEXT PRIMARY KEY,
    settings TEXT,
    revision BIGINT NOT NULL DEFAULT 0,
    max_keys BIGINT
);
CREATE TABLE users (
    tenant   TEXT NOT NULL,
    uid      TEXT NOT NULL,
    name     TEXT NOT NULL,
    presence SMALLINT NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (tenant, uid)
);
CREATE TABLE state (
    tenant TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  BYTEA NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE TABLE timers (
    tenant TEXT NOT NULL,
    key    TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX timers_due ON timers (due_at);
