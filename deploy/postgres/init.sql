-- Runs once, when the database volume is first initialised (docker-entrypoint-initdb.d), as the
-- POSTGRES_USER in the POSTGRES_DB database. It does not run again on an existing volume.
--
-- Enable TimescaleDB where the server has it (the timescale/timescaledb image does, and its own
-- init script already creates it; this keeps the result the same on a plain PostgreSQL image).
-- dosewatch's migrations do the rest by themselves: on every start `dosewatch migrate` (and every
-- dosewatch process) checks for the extension and, when present, turns dose_events and
-- dispenser_status into hypertables (dosewatch/db/migrate.py). Without it they stay plain tables.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
    ELSE
        RAISE NOTICE 'timescaledb is not installed: dosewatch will use plain PostgreSQL tables';
    END IF;
END
$$;
