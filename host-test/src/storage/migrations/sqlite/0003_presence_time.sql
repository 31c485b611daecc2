-- Schema version 3: when a user's presence was last set (milliseconds), so
-- a presence event that arrives late (a webhook retried) never overwrites a
-- newer one.
ALTER TABLE users ADD COLUMN presence_at INTEGER NOT NULL DEFAULT 0;
