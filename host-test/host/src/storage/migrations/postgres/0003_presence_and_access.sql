-- Schema version 3: when a user's presence was last set (milliseconds), so
-- a presence event that arrives late (a webhook retried) never overwrites a
-- newer one; and each tenant's access record (its webhook credentials, API
-- token hashes, CometChat app), a JSON document the host seals at rest.
ALTER TABLE users ADD COLUMN presence_at BIGINT NOT NULL DEFAULT 0;
CREATE TABLE access (
    tenant TEXT PRIMARY KEY,
    data   TEXT NOT NULL
);
