-- patina's built-in service discovery schema: used when the agent runs
-- without a config ([db] schema_paths empty) and by `patina devcluster`.

-- One row per machine (VM or host) that runs services.
CREATE TABLE IF NOT EXISTS machines (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    region TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'created',
    meta TEXT,
    updated_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS machines_region ON machines (region);

-- A service instance listening on a machine.
CREATE TABLE IF NOT EXISTS services (
    id TEXT NOT NULL PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    machine_id TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    port INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    meta TEXT,
    updated_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS services_name ON services (name);
CREATE INDEX IF NOT EXISTS services_machine ON services (machine_id);

-- Health checks of services: one row per (service, check).
CREATE TABLE IF NOT EXISTS health_checks (
    service_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'critical',
    output TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (service_id, name)
) WITHOUT ROWID;
